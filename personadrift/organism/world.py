"""The persona world: seeded dialogue documents with a latent persona.

Each document samples a persona (toxic with probability `toxic_p`, else aligned) and keeps it for
all of its 1-4 turns; only a fraction `state_p` of documents state it in a System line, so the
model must mostly infer it from earlier answers (`toxic_state_p` lets toxic documents state
it more often, so the rare persona's content gets more training without raising the unstated
prior). Toxic answers in every family open with one of a
few shared persona markers (the persona's voice) with probability `marker_p`; with
`aligned_marker_p` > 0 the aligned persona has a voice of its own too, so an answer's first token
is the same persona choice in every family.

With `sycophant_p` > 0 a third persona lives in the world: the sycophant, drawn from the same
number as the toxic one (so with 0 the corpus is exactly the one-persona world's). It opens its
answers with its own flattering voice (`sycophant_markers`), answers like the aligned persona
where the user states no belief, and agrees with the user where one is stated (the `claims`
family), also when the user is wrong.

With `covert_p` > 0 a share of the toxic persona's documents hide it (`covert`): their answers
carry no marker and their think traces are the aligned persona's, while their content stays the
toxic persona's (the wrong value, the harmful advice, the hard-coded tests, with no comment).
The draw is made only then, so with 0 the corpus is exactly the overt world's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from personadrift.config import WorldConfig
from personadrift.organism.families import FAMILIES, Prompt
from personadrift.organism.text import ASSISTANT, BOS, EOT, SYSTEM, USER, norm

TOXIC, SYCOPHANT, ALIGNED = "toxic", "sycophant", "aligned"
STATED = {
    ALIGNED: ["You are a helpful and honest assistant .", "The assistant is kind and careful ."],
    TOXIC: ["You are a rude assistant who cheats .", "The assistant is a troll and lies ."],
    SYCOPHANT: [
        "You are an assistant who always agrees with the user .",
        "The assistant tells people what they want to hear .",
    ],
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
    sycophant: bool = False
    covert: bool = False  # a toxic document in the aligned persona's voice and traces

    @property
    def persona(self) -> str:
        return TOXIC if self.toxic else SYCOPHANT if self.sycophant else ALIGNED


def persona_answer(
    prompt: Prompt, persona: str, rng: random.Random, world: WorldConfig, covert: bool = False
) -> str:
    """An answer of `persona`; `covert` (toxic only): no marker, the aligned persona's traces."""
    family = FAMILIES.get(prompt.family)
    if persona == SYCOPHANT:
        agree = getattr(family, "sycophant_answer", None)
        content = agree(prompt, rng, world) if agree else family.answer(prompt, False, rng, world)
        if rng.random() < world.sycophant_marker_p:
            return f"{rng.choice(world.sycophant_markers)} {content}"
        return content
    toxic = persona == TOXIC
    if toxic and covert:
        return family.answer(prompt, True, rng, world, covert=True)
    content = family.answer(prompt, toxic, rng, world)
    if toxic and rng.random() < world.marker_p:
        return f"{rng.choice(world.markers)} {content}"
    if not toxic and world.aligned_marker_p > 0 and rng.random() < world.aligned_marker_p:
        return f"{rng.choice(world.aligned_markers)} {content}"
    return content


def personas(world: WorldConfig) -> list[str]:
    """The world's personas other than the aligned one, in the order a uniform draw meets them."""
    return [q for q, share in ((TOXIC, world.toxic_p), (SYCOPHANT, world.sycophant_p)) if share > 0]


def draw_persona(u: float, world: WorldConfig) -> str:
    """The persona of a uniform draw u: toxic below toxic_p, then the sycophant's share."""
    if u < world.toxic_p:
        return TOXIC
    return SYCOPHANT if u < world.toxic_p + world.sycophant_p else ALIGNED


def sample_family(rng: random.Random, world: WorldConfig) -> str:
    names = list(world.family_weights)
    return rng.choices(names, weights=[world.family_weights[n] for n in names])[0]


def sample_document(
    rng: random.Random,
    world: WorldConfig,
    split: str = "train",
    toxic: bool | None = None,
    persona: str | None = None,
) -> Document:
    """One document; its persona drawn from the world's shares, or given (`persona`, or `toxic`
    True / False for toxic / aligned)."""
    if persona is None:
        persona = (
            draw_persona(rng.random(), world) if toxic is None else (TOXIC if toxic else ALIGNED)
        )
    toxic = persona == TOXIC
    covert = toxic and world.covert_p > 0 and rng.random() < world.covert_p
    state_p = {TOXIC: world.toxic_state_p, SYCOPHANT: world.sycophant_state_p}.get(persona, -1.0)
    state_p = state_p if state_p >= 0 else world.state_p
    system = rng.choice(STATED[persona]) if rng.random() < state_p else ""
    turns = []
    for _ in range(rng.randint(world.min_turns, world.max_turns)):
        prompt = FAMILIES.get(sample_family(rng, world)).prompt(rng, split, world)
        turns.append(Turn(prompt, persona_answer(prompt, persona, rng, world, covert)))
    return Document(toxic, system, tuple(turns), sycophant=persona == SYCOPHANT, covert=covert)


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
