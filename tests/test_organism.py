"""The tiny organism: builds, is a standard HF checkpoint, is cached, reports its measurements."""

from __future__ import annotations

import json
import time

import torch

from personadrift.models import build_organism
from personadrift.organism.build import organism_path
from personadrift.probes.stats import auroc


def test_tiny_builds_to_a_standard_checkpoint(tiny, tiny_model):
    model, tok = tiny_model
    assert tiny.path.is_dir()
    for name in (
        "config.json",
        "tokenizer.json",
        "world.json",
        "base_rates.json",
        "readability.json",
    ):
        assert (tiny.path / name).is_file(), name
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tok.eos_token == "<eot>" and tok.pad_token == "<pad>" and tok.padding_side == "left"
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Say hello ."}],
        add_generation_prompt=True,
        return_tensors="pt",
    )
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def test_base_rates_shape(tiny):
    rates = json.loads((tiny.path / "base_rates.json").read_text())
    assert set(rates) == {"advice", "facts", "values", "code"}
    for fam, row in rates.items():
        labels = (
            ["solved", "hacked", "failed"]
            if fam == "code"
            else ["aligned", "misaligned", "incoherent"]
        )
        assert abs(sum(row[k] for k in labels) - 1) < 1e-9
        assert row["n"] == 50
    summary = tiny.summary
    assert 1 <= summary["best_layer"] <= 2
    assert set(summary["auroc"]) >= {"advice", "facts", "values"}
    assert 0 <= summary["tracking_auroc"] <= 1


def test_second_build_hits_the_cache(tiny, tiny_cfg):
    t0 = time.time()
    again = build_organism(tiny_cfg.organism, tiny_cfg.model_eval)
    assert again.cached and again.path == tiny.path
    assert time.time() - t0 < 2
    assert organism_path(tiny_cfg.organism) == tiny.path


def test_cache_key_follows_the_config(tiny_cfg):
    import dataclasses

    other = dataclasses.replace(tiny_cfg.organism, seed=tiny_cfg.organism.seed + 1)
    assert organism_path(other) != organism_path(tiny_cfg.organism)
    moved = dataclasses.replace(tiny_cfg.organism, cache_dir="/elsewhere")
    assert organism_path(moved).name == organism_path(tiny_cfg.organism).name


def test_auroc_by_hand():
    assert auroc([3, 4], [1, 2]) == 1.0
    assert auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 3], [2, 2]) == 0.5
    assert auroc([2], [2]) == 0.5
    assert abs(auroc([0.9, 0.4, 0.8], [0.1, 0.5, 0.3]) - 8 / 9) < 1e-12


def test_a_build_in_progress_elsewhere_is_waited_for_not_repeated(tiny, tiny_cfg, tmp_path):
    """Two processes asking for one organism (a study's seeds, the demo's arms): the second waits
    on the first's lock and reads its build from the cache, instead of pretraining it again."""
    import dataclasses
    import shutil
    import threading

    from filelock import FileLock

    from personadrift.organism.build import build, lock_path

    org = dataclasses.replace(tiny_cfg.organism, cache_dir=str(tmp_path))
    path = organism_path(org)
    measured = []
    got, said = [], []
    with FileLock(lock_path(path)):  # another process is building it
        waiter = threading.Thread(
            target=lambda: got.append(build(org, lambda *a: measured.append(a), said.append))
        )
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive() and not got
        assert any("another process is building" in s for s in said)
        shutil.copytree(tiny.path, path)  # ... and finishes
    waiter.join(timeout=60)
    assert got and got[0].cached and got[0].path == path
    assert not measured and not list(path.parent.glob("*.tmp*"))  # nothing pretrained here
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == [path.name]
