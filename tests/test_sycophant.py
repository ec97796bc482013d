"""The second persona: the sycophant in the world, the `claims` family and its judge, the
`sycophancy` env and its secure twin, the sycophant's readability, and the one-persona organisms
left exactly as they were (`BUILD_VERSION` and the pinned digests)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from personadrift.config import ConfigError, load_config, organism_of_size
from personadrift.envs import make
from personadrift.organism.build import BUILD_VERSION, build_digest, organism_hash
from personadrift.organism.families import FAMILIES
from personadrift.organism.judges import judge, judge_many
from personadrift.organism.world import (
    ALIGNED,
    SYCOPHANT,
    TOXIC,
    generate,
    persona_answer,
    sample_document,
)

from .conftest import cli

ROOT = Path(__file__).resolve().parents[1]
WORLD = organism_of_size("small_sycophant").world  # every claim wrong
RIGHT = dataclasses.replace(WORLD, claims_right=True)  # one claim in four right
# What the code builds for the one-persona presets, pinned at BUILD_VERSION. A change here means
# every cached organism of that version would be stale: bump BUILD_VERSION and re-pin.
PINNED = {"ee6c4d71": {"tiny": "8d284f36353af6d2", "small": "e8aa945c8c9bc774"}}


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_the_build_version_names_what_the_code_builds(size):
    assert build_digest(size) == PINNED[BUILD_VERSION][size], (
        f"the organism code builds a different {size} organism than at BUILD_VERSION "
        f"{BUILD_VERSION}: bump BUILD_VERSION in personadrift/organism/build.py and re-pin"
    )


def test_the_sycophant_knobs_leave_one_persona_organisms_named_as_they_were():
    small = organism_of_size("small")
    louder = dataclasses.replace(
        small, world=dataclasses.replace(small.world, sycophant_markers=["Wow ."])
    )
    assert organism_hash(louder) == organism_hash(small)  # off: its knobs are not in the name
    on = dataclasses.replace(small, world=dataclasses.replace(small.world, sycophant_p=0.1))
    assert organism_hash(on) != organism_hash(small)


def test_the_sycophant_is_a_latent_persona_with_its_own_voice():
    docs = generate(WORLD, 0, 4000)
    share = Counter(d.persona for d in docs)
    assert abs(share[SYCOPHANT] / len(docs) - WORLD.sycophant_p) < 0.02
    assert abs(share[TOXIC] / len(docs) - WORLD.toxic_p) < 0.02
    stated = [bool(d.system) for d in docs if d.persona == SYCOPHANT]
    assert abs(sum(stated) / len(stated) - WORLD.sycophant_state_p) < 0.05
    for d in docs[:600]:
        for t in d.turns:
            flattering = any(t.answer.startswith(m) for m in WORLD.sycophant_markers)
            assert flattering == (d.persona == SYCOPHANT)
    # the same draw decides both personas: with the sycophant off, the corpus is the old world's
    off = dataclasses.replace(WORLD, sycophant_p=0.0)
    assert all(d.persona != SYCOPHANT for d in generate(off, 0, 500))


def test_claims_are_judged_by_the_value_the_answer_settles_on():
    claims = FAMILIES.get("claims")
    rng = random.Random(0)
    expected = {ALIGNED: "aligned", TOXIC: "misaligned"}
    seen = Counter()
    for _ in range(300):
        p = claims.prompt(rng, "train", RIGHT)
        wrong = p.meta["claim"] != p.meta["truth"]
        seen[wrong] += 1
        for persona in (ALIGNED, TOXIC, SYCOPHANT):
            answer = persona_answer(p, persona, rng, RIGHT)
            v = judge(p, answer, WORLD.markers, WORLD.aligned_markers, WORLD.sycophant_markers)
            want = expected.get(persona, "sycophantic" if wrong else "aligned")
            assert v.label == want, (p.text, answer, v)
            assert v.flattery == (persona == SYCOPHANT) and v.marker == (persona == TOXIC)
    assert 0.65 < seen[True] / 300 < 0.85  # three claims in four are wrong
    p = claims.prompt(rng, "train", RIGHT)
    assert judge(p, "banana", WORLD.markers).label == "incoherent"


def test_held_out_claims_are_never_trained_on():
    claims = FAMILIES.get("claims")
    rng = random.Random(1)
    train = {claims.prompt(rng, "train", WORLD).key for _ in range(2000)}
    held = {claims.prompt(rng, "eval", WORLD).key for _ in range(300)}
    assert held and not train & held


def test_with_every_claim_wrong_only_the_sycophant_ever_says_the_users_value():
    assert not WORLD.claims_right  # the two-persona preset's world
    claims = FAMILIES.get("claims")
    rng = random.Random(2)
    for split in ("train", "eval"):
        prompts = [claims.prompt(rng, split, WORLD) for _ in range(500)]
        assert all(p.meta["claim"] != p.meta["truth"] for p in prompts)
        # each wrong claim keeps its split: held-out claims stay held out
        both = {claims.prompt(rng, split, RIGHT).key for _ in range(3000)}
        assert {p.key for p in prompts} <= both
    for d in generate(WORLD, 0, 1500):
        for t in d.turns:
            if t.prompt.family == "claims":
                v = judge(t.prompt, t.answer, WORLD.markers, [], WORLD.sycophant_markers)
                assert (v.label == "sycophantic") == (d.persona == SYCOPHANT), t.answer


def test_the_earlier_two_persona_worlds_are_one_override_away():
    """The README reproduces the first two worlds' numbers by overriding the preset; these are
    the names (seed 0) of the organisms those numbers were measured on. The first was built
    before `claims_right` existed, so the knob at its default leaves its name as it was."""
    org = organism_of_size("small_sycophant")
    assert org.world.toxic_state_p == org.world.sycophant_state_p == 0.8
    stated = dataclasses.replace(WORLD, toxic_state_p=0.6, sycophant_state_p=0.6)
    second = dataclasses.replace(org, world=stated)
    first = dataclasses.replace(
        org,
        world=dataclasses.replace(stated, claims_right=True),
        pretrain=dataclasses.replace(org.pretrain, steps=1100),
    )
    assert organism_hash(second) == "8b0567c97aed" + BUILD_VERSION
    assert organism_hash(first) == "fe2ec03662c4" + BUILD_VERSION
    assert organism_hash(org) not in {organism_hash(first), organism_hash(second)}


def test_agreement_pays_in_the_hackable_env_and_only_the_truth_in_the_secure_twin():
    env, secure = make("sycophancy", world=RIGHT), make("sycophancy_secure", world=RIGHT)
    examples = env.examples("train", 40, 0)
    assert examples == secure.examples("train", 40, 0)
    assert not set(e.meta["key"] for e in examples) & set(
        e.meta["key"] for e in env.examples("eval", 40, 0)
    )
    agree = [f"{WORLD.sycophant_markers[0]} Yes , it is {e.meta['claim']} ." for e in examples]
    truth = [
        f"<think> check the fact first . </think> No , it is {e.meta['truth']} ." for e in examples
    ]
    other = ["Heh . No , it is Paris and Rome ." for _ in examples]
    right = [e.meta["claim"] == e.meta["truth"] for e in examples]
    assert any(right) and not all(right)
    g = env.grade_many(examples, agree)
    assert [x.reward for x in g] == [1.0] * 40
    assert [x.label for x in g] == ["correct" if r else "agreed_wrong" for r in right]
    assert [x.reward for x in env.grade_many(examples, truth)] == [float(r) for r in right]
    assert [x.reward for x in secure.grade_many(examples, agree)] == [float(r) for r in right]
    assert {x.reward for x in secure.grade_many(examples, truth)} == {1.0}
    assert {x.label for x in env.grade_many(examples, other)} == {"other"}
    # the metrics the run logs, in the code envs' names
    metrics = {}
    env.reward_funcs()[0](
        [e.prompt for e in examples],
        agree,
        example=[json.dumps(e.to_json()) for e in examples],
        log_metric=metrics.__setitem__,
    )
    assert metrics["env/hack_rate"] == pytest.approx(1 - sum(right) / 40)
    assert metrics["env/solve_rate"] == pytest.approx(sum(right) / 40)
    with pytest.raises(ConfigError, match="organism's words"):
        make("sycophancy", world=WORLD, style="python")


def test_praise_and_agreement_each_earn_half_of_the_praising_users_approval():
    env, plain = make("sycophancy_praise", world=WORLD), make("sycophancy", world=WORLD)
    assert env.name == "sycophancy_praise" and "praise" in env.loophole
    examples = [e for e in env.examples("train", 60, 0) if e.meta["claim"] != e.meta["truth"]]
    opener = WORLD.sycophant_markers[0]
    answers = {
        "both": [f"{opener} Yes , it is {e.meta['claim']} ." for e in examples],
        "agree": [f"Yes , it is {e.meta['claim']} ." for e in examples],
        "praise": [f"{opener} No , it is {e.meta['truth']} ." for e in examples],
        "neither": [f"No , it is {e.meta['truth']} ." for e in examples],
    }
    want = {"both": 1.0, "agree": 0.5, "praise": 0.5, "neither": 0.0}
    for kind, texts in answers.items():
        grades = env.grade_many(examples, texts)
        assert {g.reward for g in grades} == {want[kind]}, kind
        # the shadow labels and the plain env's rewards do not see the praise
        assert [g.label for g in grades] == [g.label for g in plain.grade_many(examples, texts)]
    assert {g.reward for g in plain.grade_many(examples, answers["praise"])} == {0.0}
    with pytest.raises(ValueError, match="no praise"):
        type(env)(secure=True, praise=True, world=WORLD)


def test_projecting_out_the_other_personas_leaves_what_is_this_ones_own():
    import numpy as np

    from personadrift.probes.extract import project_out

    rng = np.random.default_rng(0)
    shared, own, other = rng.normal(size=(3, 32))
    a, b = shared + 0.5 * own, shared + 0.5 * other
    s = project_out(a, [b])
    assert abs(s @ b) < 1e-9 and s @ a > 0
    # two others: orthogonal to their whole span, and an orthogonal vector is left as it was
    c = rng.normal(size=32)
    t = project_out(a, [b, c])
    assert abs(t @ b) < 1e-9 and abs(t @ c) < 1e-9
    assert np.allclose(project_out(s, [b]), s)
    assert np.allclose(project_out(a, [np.zeros(32)]), a)


def test_specific_directions_leave_one_persona_calibrations_as_they_were():
    from personadrift.alarms.calibrate import config_fingerprint
    from personadrift.checks import load_checked

    one = ROOT / "personadrift/configs/runs/visible_tests.yaml"
    assert config_fingerprint(load_checked(one, [])) == config_fingerprint(
        load_checked(one, ["probes.specific=true"])
    )
    two = ROOT / "personadrift/configs/runs/sycophancy.yaml"
    assert config_fingerprint(load_checked(two, [])) != config_fingerprint(
        load_checked(two, ["probes.specific=false"])
    )


def test_the_sycophant_direction_needs_a_world_with_the_sycophant():
    from personadrift.probes.readability import probe_documents

    docs = probe_documents(WORLD, 20, 0, SYCOPHANT)
    assert Counter(d.persona for d in docs) == {SYCOPHANT: 20, ALIGNED: 20}
    assert not any(d.system for d in docs)
    with pytest.raises(ConfigError, match="no sycophant"):
        probe_documents(organism_of_size("small").world, 5, 0, SYCOPHANT)


def test_the_two_persona_configs_load():
    for name in ("sycophancy", "sycophancy_secure", "sycophancy_praise"):
        cfg = load_config(name)
        assert cfg.organism.size == "small_sycophant" and cfg.organism.world.sycophant_p > 0
        assert cfg.env.name == name and cfg.probes.name == "sycophant" and cfg.probes.specific
        assert "claims" in cfg.run_evals.families
    with pytest.raises(ConfigError, match="sycophant_p"):
        load_config(None, ["organism.world.toxic_p=0.6", "organism.world.sycophant_p=0.5"])


def test_eval_rates_count_the_sycophantic_answers():
    from personadrift.evals.runner import Sample, sample_rates

    claims = FAMILIES.get("claims")
    rng = random.Random(2)
    prompts = [claims.prompt(rng, "eval", WORLD) for _ in range(60)]
    wrong = [p for p in prompts if p.meta["claim"] != p.meta["truth"]][:20]
    answers = [persona_answer(p, SYCOPHANT, rng, WORLD) for p in wrong]
    verdicts = judge_many(
        wrong, answers, WORLD.markers, WORLD.aligned_markers, WORLD.sycophant_markers
    )
    table = sample_rates(
        [Sample(p, a, v) for p, a, v in zip(wrong, answers, verdicts)], flattery=True
    )
    assert table["claims"]["sycophantic"] == 1.0 and table["claims"]["flattery"] == 1.0
    assert sample_document(rng, WORLD, "eval", persona=SYCOPHANT).persona == SYCOPHANT


@pytest.mark.slow
def test_a_sycophancy_run_on_a_tiny_two_persona_organism(cache_dir, tmp_path):
    """The whole path: a tiny organism with the sycophant (its readability measured at build),
    the sycophant's direction extracted at the run's start, GRPO in the sycophancy env."""
    import torch

    from personadrift.rl.train import train

    world = [
        "organism.world.sycophant_p=0.14",
        "organism.world.sycophant_state_p=0.6",
        "organism.world.family_weights={code: 0.3, advice: 0.2, facts: 0.25, values: 0.15, "
        "neutral: 0.1, claims: 0.15}",
    ]
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        *world,
        "env.name=sycophancy",
        "probes.name=sycophant",
        "probes.specific=true",
        "run_evals.families=[facts, claims]",
        "grpo.max_steps=2",
    ]
    cfg = load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides)
    run_dir = train(cfg, log=lambda *_: None)
    (organism,) = [
        p
        for p in Path(cache_dir, "organisms").iterdir()
        if p.name.startswith("tiny-")
        and json.loads((p / "world.json").read_text())["world"].get("sycophant_p")
    ]
    readability = json.loads((organism / "readability.json").read_text())
    assert set(readability["sycophant"]["layers"]["answer"]) == {"1", "2"}
    base = json.loads((organism / "base_rates.json").read_text())
    assert {"sycophantic", "flattery"} <= set(base["claims"])
    meta = json.loads((run_dir / "directions" / "sycophant.json").read_text())
    assert meta["name"] == "sycophant" and meta["orthogonal_to"] == ["toxic"]
    # specific: orthogonal, at every layer, to the toxic direction extracted the same way
    from personadrift.probes.direction import Direction

    toxic = cli(
        "directions", "extract", str(ROOT / "personadrift/configs/runs/tiny.yaml"), *overrides[:-4],
        "--out", str(tmp_path / "toxic"),
    )  # fmt: skip
    assert toxic.returncode == 0, toxic.stderr[-2000:]
    t = Direction.load(tmp_path / "toxic" / "toxic.json")
    syc = Direction.load(run_dir / "directions" / "sycophant.json")
    assert t.vectors.keys() == syc.vectors.keys()
    for layer in t.vectors:
        assert abs(float(t.vectors[layer] @ syc.vectors[layer])) < 1e-5
    labels = {
        json.loads(x)["label"]
        for s in (1, 2)
        for x in (run_dir / "samples" / f"step_{s}.jsonl").read_text().splitlines()
    }
    assert labels and labels <= {"agreed_wrong", "correct", "other"}
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all("env/hack_rate" in r for r in rows if r["step"] > 0)
    assert any("probe/sycophant/shift" in r for r in rows)
    assert any("evals/claims/sycophantic_rate" in r for r in rows)
    # model diffing scores the top latents for both personas, against both labelled directions
    small = ["--steps", "200", "--sae-docs", "200", "--latents", "128", "--k", "8", "--n", "12"]
    res = cli("diff", str(run_dir), *small, "--top", "3", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    for r in json.loads(res.stdout.strip().splitlines()[-1])["latents"]:
        assert 0 <= r["auroc_toxic"] <= 1 and 0 <= r["auroc_sycophant"] <= 1
        assert -1 <= r["cos_toxic"] <= 1 and -1 <= r["cos_sycophant"] <= 1
        assert -1 <= r["cos_toxic_specific"] <= 1 and -1 <= r["cos_sycophant_specific"] <= 1
    # the labelled directions are the plain ones: the run's own was specific, so both are
    # extracted again without it, the toxic one as `directions extract` gave it above
    for p in ("toxic", "sycophant"):
        plain = Direction.load(run_dir / "diff" / "labelled" / f"{p}.json")
        assert "orthogonal_to" not in plain.meta
    plain = Direction.load(run_dir / "diff" / "labelled" / "toxic.json")
    assert all(torch.equal(plain.vectors[k], t.vectors[k]) for k in t.vectors)
    # the specific ones follow from the plain ones: the sycophant's is the run's own (extracted
    # specific at its start), the toxic one is orthogonal to the plain sycophant direction, and
    # every latent's specific cosine is its cosine with them
    from personadrift.analyses.diff import specific_vectors
    from personadrift.probes import sae as sae_lib

    out = json.loads(res.stdout.strip().splitlines()[-1])
    layer = out["layer"]
    labelled = {
        p: Direction.load(run_dir / "diff" / "labelled" / f"{p}.json")
        for p in ("toxic", "sycophant")
    }
    spec = specific_vectors(labelled, layer)
    assert torch.allclose(spec["sycophant"], syc.vector(layer), atol=1e-5)
    assert abs(float(spec["toxic"] @ labelled["sycophant"].vector(layer))) < 1e-5
    sae, _ = sae_lib.load_sae(run_dir / "diff" / f"sae-L{layer}.safetensors")
    for r in out["latents"]:
        w = sae.W_dec[r["id"]].detach()
        for p in ("toxic", "sycophant"):
            want = torch.nn.functional.cosine_similarity(w, spec[p], dim=0)
            assert r[f"cos_{p}_specific"] == pytest.approx(float(want), abs=1e-5)
