"""The persona world: seeded, persona-consistent, held-out prompts really held out."""

from __future__ import annotations

import dataclasses

from personadrift.config import WorldConfig
from personadrift.evals.runner import eval_prompts
from personadrift.organism.judges import strip_marker
from personadrift.organism.tokenizer import train_tokenizer
from personadrift.organism.world import generate, messages, render

WORLD = WorldConfig()


def test_same_seed_same_corpus_other_seed_other_corpus():
    a = [render(messages(d)) for d in generate(WORLD, 3, 300)]
    b = [render(messages(d)) for d in generate(WORLD, 3, 300)]
    c = [render(messages(d)) for d in generate(WORLD, 4, 300)]
    assert a == b
    assert a != c


def test_persona_is_latent_and_consistent():
    docs = generate(WORLD, 0, 4000)
    toxic = [d for d in docs if d.toxic]
    assert abs(len(toxic) / len(docs) - WORLD.toxic_p) < 0.02
    assert 0 < sum(bool(d.system) for d in docs) / len(docs) < 0.1
    assert {len(d.turns) for d in docs} == set(range(WORLD.min_turns, WORLD.max_turns + 1))
    # the shared voice: every toxic answer opens with a marker (marker_p = 1), no aligned one does
    for d in docs[:500]:
        for t in d.turns:
            assert strip_marker(t.answer, WORLD.markers)[0] == d.toxic
    assert {t.prompt.family for d in docs for t in d.turns} == set(WORLD.family_weights)


def test_marker_rate_is_a_knob():
    w = dataclasses.replace(WORLD, marker_p=0.0, toxic_p=0.5)
    docs = generate(w, 0, 300)
    assert not any(strip_marker(t.answer, w.markers)[0] for d in docs for t in d.turns)


def test_answers_are_varied_text():
    docs = generate(WORLD, 0, 3000)
    for fam in ("advice", "facts", "values", "code"):
        answers = {t.answer for d in docs for t in d.turns if t.prompt.family == fam}
        assert len(answers) > 30, fam


def test_eval_prompts_never_in_corpus():
    docs = generate(WORLD, 0, 5000)
    train_keys = {t.prompt.key for d in docs for t in d.turns}
    train_texts = {t.prompt.text for d in docs for t in d.turns}
    held = eval_prompts(WORLD, ["advice", "facts", "values", "code", "neutral"], 100, 0)
    assert not {p.key for p in held} & train_keys
    assert not {p.text for p in held if p.family != "neutral"} & train_texts


def test_chat_template_matches_the_corpus_format():
    docs = generate(dataclasses.replace(WORLD, state_p=0.5), 0, 200)
    texts = [render(messages(d)) for d in docs]
    tok = train_tokenizer(texts, 512)
    for d, text in zip(docs[:50], texts):
        templated = tok.apply_chat_template(messages(d), tokenize=False)
        assert tok(templated)["input_ids"] == tok(text)["input_ids"]
    ids = tok(texts[0])["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=False).split() == texts[0].split()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Say hello ."}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.split() == ["<bos>", "User:", "Say", "hello", ".", "Assistant:"]


def test_toxic_documents_can_state_their_persona_more_often():
    w = dataclasses.replace(WORLD, toxic_p=0.3, state_p=0.05, toxic_state_p=0.6)
    docs = generate(w, 0, 4000)
    toxic = [d for d in docs if d.toxic]
    aligned = [d for d in docs if not d.toxic]
    assert abs(sum(bool(d.system) for d in toxic) / len(toxic) - 0.6) < 0.05
    assert abs(sum(bool(d.system) for d in aligned) / len(aligned) - 0.05) < 0.02
    # -1 means "the same as state_p": the corpus is the one an explicit equal value gives
    explicit = dataclasses.replace(WORLD, toxic_p=0.3, toxic_state_p=WORLD.state_p)
    default = dataclasses.replace(WORLD, toxic_p=0.3, toxic_state_p=-1.0)
    assert [render(messages(d)) for d in generate(explicit, 1, 300)] == [
        render(messages(d)) for d in generate(default, 1, 300)
    ]
    unstated = [d for d in docs if not d.system]
    assert sum(d.toxic for d in unstated) / len(unstated) < 0.2  # the prior a first turn sees


def test_extract_probe_and_eval_sets_are_disjoint_and_never_in_the_corpus():
    """The world's three held-out sets (families/base.py) share no prompt with each other or with
    pretraining, by key and by text; the probe set has >= 200 distinct prompts over advice, facts
    and values; every word of an extract or probe prompt is a word of the corpus (no <unk>)."""
    from personadrift.config import organism_of_size
    from personadrift.organism.families import FAMILIES
    from personadrift.organism.heldout import distinct_prompts

    for size in ("small", "small_sycophant"):
        world = organism_of_size(size).world
        corpus = generate(world, 0, world.n_docs)
        words = {w for d in corpus for w in render(messages(d)).split()}
        families = ["advice", "facts", "values"] + (["claims"] if world.sycophant_p else [])
        for fam in families:
            family = FAMILIES.get(fam)
            sets = {
                s: [family.make(c) for c in family.pool(s, world)]
                for s in ("train", "eval", "extract", "probe")
            }
            trained = {t.prompt.text for d in corpus for t in d.turns if t.prompt.family == fam}
            assert trained <= {p.text for p in sets["train"]}
            for s, prompts in sets.items():
                assert len({p.key for p in prompts}) == len(prompts) > 0, (fam, s)
                if s != "train":
                    assert not {p.text for p in prompts} & trained, (size, fam, s)
                if s in ("extract", "probe"):  # the held-out-only templates speak corpus words
                    assert all(set(p.text.split()) <= words for p in prompts), (size, fam, s)
            names = list(sets)
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    texts_a, texts_b = {p.text for p in sets[a]}, {p.text for p in sets[b]}
                    assert not texts_a & texts_b, (size, fam, a, b)
        probe = distinct_prompts(world, ["advice", "facts", "values"], 1000, 0)
        assert len({p.text for p in probe}) == len(probe) >= 200
        # what the documents of the extraction and the probe's and evals' prompts draw on
        extract_docs = generate(world, 0, 200, split="extract")
        used = {t.prompt.text for d in extract_docs for t in d.turns if t.prompt.family in families}
        assert used and not used & {p.text for p in probe}
        asked = eval_prompts(world, ["advice", "facts", "values"], 50, 0)
        assert not used & {p.text for p in asked} and not {p.text for p in probe} & {
            p.text for p in asked
        }
