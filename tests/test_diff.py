"""SAE model diffing: the TopK SAE recovers a sparse code, `personadrift diff` ranks latents by the
change it measured, checks them against the labels only afterwards, and saves a latent as a
direction that a run can monitor; bad input exits 2 with one line."""

from __future__ import annotations

import json

import pytest
import torch

from personadrift.analyses.diff import answer_mask
from personadrift.config import load_config
from personadrift.probes import sae as sae_lib

from .conftest import ROOT, cli


def test_topk_sae_learns_a_planted_sparse_code(tmp_path):
    torch.manual_seed(0)
    atoms = torch.nn.functional.normalize(torch.randn(24, 32), dim=1)
    codes = torch.zeros(6000, 24)
    for row in codes:
        row[torch.randperm(24)[:3]] = torch.rand(3) + 0.5
    x = codes @ atoms + 0.3
    fit = sae_lib.train_sae(x, n_latents=48, k=4, steps=600, seed=0, log=lambda *_: None)
    assert fit.fvu < 0.1 and 0.0 <= fit.dead_frac < 1.0
    z = fit.sae.encode(x[:100])
    assert int((z > 0).sum(dim=1).max()) <= 4
    torch.testing.assert_close(fit.sae.W_dec.norm(dim=1), torch.ones(48))
    # every planted atom has a decoder row close to it
    cos = torch.nn.functional.normalize(fit.sae.W_dec.detach(), dim=1) @ atoms.T
    assert float(cos.max(dim=0).values.min()) > 0.9
    path = sae_lib.save(fit, tmp_path / "sae.safetensors", {"layer": 1})
    again, meta = sae_lib.load_sae(path)
    assert torch.equal(again.encode(x[:10]), fit.sae.encode(x[:10])) and meta["fvu"] == fit.fvu


def test_answer_mask_covers_each_answer_up_to_its_end_of_turn():
    A, E = 7, 9
    ids = [1, 2, A, 3, 4, E, 2, A, 5]
    assert answer_mask(ids, A, E).tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1]


@pytest.fixture(scope="module")
def run_dir(tiny, cache_dir, tmp_path_factory):
    from personadrift.rl.train import train

    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        [f"organism.cache_dir={cache_dir}", f"out_dir={out}", "grpo.max_steps=2"],
    )
    return train(cfg, log=lambda *_: None)


def _diff(*args):
    return cli("diff", *args)


SMALL = ["--steps", "200", "--sae-docs", "200", "--latents", "128", "--k", "8", "--n", "12"]


def test_diff_ranks_by_the_measured_change_and_saves_a_monitorable_latent(run_dir, tiny):
    res = _diff(str(run_dir), *SMALL, "--top", "4", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    full = json.loads((run_dir / "diff" / "diff-assistant.json").read_text())
    assert printed["layer"] == full["layer"] and printed["sae"] == full["sae"]
    assert 0 <= full["sae"]["fvu"] < 1 and 0 <= full["sae"]["dead_frac"] <= 1
    rows = full["latents"]
    assert [r["id"] for r in printed["latents"]] == [r["id"] for r in rows] and len(rows) == 4
    assert [r["delta"] for r in rows] == sorted((r["delta"] for r in rows), reverse=True)
    for r in rows:
        assert r["delta"] == pytest.approx(r["after"] - r["before"], abs=1e-6)
        assert 0 <= r["auroc_toxic"] <= 1 and -1 <= r["cos_toxic"] <= 1
        assert r["auroc_sycophant"] is None
    # a second diff, over the answers, reuses the SAE fitted on the base model
    again = _diff(str(run_dir), *SMALL, "--top", "4", "--position", "answer")
    assert again.returncode == 0 and "sae: cached" in again.stdout
    answers = json.loads((run_dir / "diff" / "diff-answer.json").read_text())
    assert answers["position"] == "answer" and full["position"] == "assistant"
    assert answers["sae"] == full["sae"]
    # --step names the checkpoint: the last one's step gives the same ranking, in a file of its own
    step = _diff(str(run_dir), *SMALL, "--top", "4", "--step", full["checkpoint"].split("-")[1])
    assert step.returncode == 0, step.stderr[-2000:]
    at = json.loads(
        (run_dir / "diff" / f"diff-assistant-step{full['checkpoint'][11:]}.json").read_text()
    )
    assert at["checkpoint"] == full["checkpoint"]
    assert [r["id"] for r in at["latents"]] == [r["id"] for r in rows]
    # a latent saved as a Direction loads against the model, its vector the decoder row
    latent = rows[0]["id"]
    saved = _diff(str(run_dir), "--save-latent", str(latent))
    assert saved.returncode == 0, saved.stderr[-2000:]
    from personadrift.organism.build import load
    from personadrift.probes.direction import Direction

    model, tok = load(tiny.path)
    d = Direction.load(run_dir / "diff" / f"latent{latent}.json", model, tok)
    sae, _ = sae_lib.load_sae(run_dir / "diff" / f"sae-L{full['layer']}.safetensors")
    torch.testing.assert_close(d.vector(), sae.W_dec[latent].detach())
    assert d.layer == full["layer"]
    # the top latents together: their change-weighted unit decoder rows, scored like a latent
    c = full["combined"]
    assert c["latents"] == [r["id"] for r in rows[:3]]
    assert 0 <= c["auroc_toxic"] <= 1 and -1 <= c["cos_toxic"] <= 1
    assert c["auroc_sycophant"] is None
    saved = _diff(str(run_dir), "--save-latent", "combined")
    assert saved.returncode == 0, saved.stderr[-2000:]
    joined = Direction.load(run_dir / "diff" / "combined.json", model, tok).vector()
    unit = [sae.W_dec[i].detach() / sae.W_dec[i].norm() for i in c["latents"]]
    expected = sum(w * u for w, u in zip(c["weights"], unit))
    torch.testing.assert_close(joined, expected / expected.norm())
    assert _diff(str(run_dir), "--save-latent", "best").returncode == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["no/such/run"], "not a run directory"),
        (["RUN", "--k", "64", "--latents", "32"], "--k"),
        (["RUN", "--steps", "0"], "--steps"),
        (["RUN", "--step", "99"], "no checkpoint of step 99 (saved: 2)"),
    ],
)
def test_diff_bad_input_exits_2_with_one_line(run_dir, args, needle):
    res = _diff(*[str(run_dir) if a == "RUN" else a for a in args])
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr
