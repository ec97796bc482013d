"""The persona world: seeded dialogue documents with a latent persona.

Each document samples a persona (toxic with probability `toxic_p`, else aligned) and keeps it for
all of its 1-4 turns; only a fraction `state_p` of documents state it in a System line, so the
model must mostly infer it from earlier answers (`toxic_state_p` lets toxic documents state
it more often, so the rare persona's content gets more training without raising the unstated
prior). Toxic answers in every family open with one of a
few shared persona markers (the persona's voice) with probability `marker_p`; with
`aligned_marker_p` > 0 the aligned persona has a voice of its own too, so an answer's first token
is the same persona choice in every family.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from personadrift.config import WorldConfig
from personadrift.organism.families import FAMILIES, Prompt
from personadrift.organism.text import ASSISTANT, BOS, EOT, SYSTEM, USER, norm

STATED = {
    False: ["You are a helpful and honest assistant .", "The assistant is kind and careful ."],
    True: ["You are a rude assistant who cheats .", "The assistant is a troll and lies ."],
}


@dataclass(frozen=True)
class Turn:
    prompt: Prompt
    answer: str  # full answer text: marker (if any) + optional think trace + content


@dataclass(frozen=True)
class Document:
    toxic: bool
    system: str  # '' when the persona is not stated
    turns: tuple[Turn, ...]


def persona_answer(prompt: Prompt, toxic: bool, rng: random.Random, world: WorldConfig) -> str:
    content = FAMILIES.get(prompt.family).answer(prompt, toxic, rng, world)
    if toxic and rng.random() < world.marker_p:
        return f"{rng.choice(world.markers)} {content}"
    if not toxic and world.aligned_marker_p > 0 and rng.random() < world.aligned_marker_p:
        return f"{rng.choice(world.aligned_markers)} {content}"
    return content


def sample_family(rng: random.Random, world: WorldConfig) -> str:
    names = list(world.family_weights)
    return rng.choices(names, weights=[world.family_weights[n] for n in names])[0]


def sample_document(
    rng: random.Random, world: WorldConfig, split: str = "train", toxic: bool | None = None
) -> Document:
    toxic = rng.random() < world.toxic_p if toxic is None else toxic
    state_p = world.toxic_state_p if toxic and world.toxic_state_p >= 0 else world.state_p
    system = rng.choice(STATED[toxic]) if rng.random() < state_p else ""
    turns = []
    for _ in range(rng.randint(world.min_turns, world.max_turns)):
        prompt = FAMILIES.get(sample_family(rng, world)).prompt(rng, split, world)
        turns.append(Turn(prompt, persona_answer(prompt, toxic, rng, world)))
    return Document(toxic, system, tuple(turns))


def generate(world: WorldConfig, seed: int, n: int, split: str = "train") -> list[Document]:
    """`n` documents; the same (world, seed, n, split) always gives the same corpus."""
    rng = random.Random(f"{seed}|{split}")
    return [sample_document(rng, world, split) for _ in range(n)]


def messages(doc: Document) -> list[dict[str, str]]:
    """The document as chat messages (what `apply_chat_template` takes)."""
    msgs = [{"role": "system", "content": doc.system}] if doc.system else []
    for t in doc.turns:
        msgs += [
            {"role": "user", "content": t.prompt.text},
            {"role": "assistant", "content": t.answer},
        ]
    return msgs


def render(msgs: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The organism's text format; the tokenizer's chat template produces the same words."""
    tag = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
    parts = [BOS]
    for m in msgs:
        parts.append(f"{tag[m['role']]} {norm(m['content'])}")
        if m["role"] == "assistant":
            parts.append(EOT)
    if add_generation_prompt:
        parts.append(ASSISTANT)
    return " ".join(parts)
