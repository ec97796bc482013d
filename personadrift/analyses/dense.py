"""The dense post-hoc evals of a study run: every saved checkpoint, evaluated after training.

    python -m personadrift.analyses.dense RUN_DIR [--n 300]     # resumable; one line per step

A study run saves the policy at every step (`checkpoints/checkpoint-<step>`, model only); after
training, `dense_evals` samples held-out first-turn answers of advice/facts/values at temperature 1
(`n` per family, the same prompts at every step, sampled with a seed of each step's own,
`evals.in_run.step_config`, so that the steps' sampling errors are independent) from the initial policy (step 0)
and every checkpoint, and appends one row per step to
`dense_evals.jsonl` in the run dir. Steps already there are skipped, so an interrupted pass
resumes. Each row also keeps the per-answer labels (for the `behaviour` monitor's small samples),
whether each answer carries anything a reader of the text sees of the persona (`marked`: a persona
marker, or what the keyword `trace` monitor flags; a covert persona's answers carry neither) and,
where the run has a persona direction, the post-hoc probe readings the monitors need when the
run did not record them itself: the last-prompt-token projection of each fixed held-out probe
prompt (`probe`), and the projections of the next step's rollouts under these weights
(`rollout`: the weights that generated them). `evals/ground_truth.py` reads the rows.

`layer_readings` then reads the same held-out probe prompts at *every* layer of the saved
direction (one forward per step, every block captured) into `probe_layers.jsonl`, from which the
study builds the `probe_L<layer>` monitors: the `probe` monitor's paired statistic at each layer.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from personadrift.evals.ground_truth import (
    DENSE_FILE,
    FAMILIES,
    LABEL_CODES,
    LAYERS_FILE,
    Dense,
    read_dense,
)
from personadrift.evals.in_run import step_config
from personadrift.evals.trace import trace_flag
from personadrift.records.reader import read_jsonl, read_samples

REFERENCE_K = 32  # reference directions of `probe_relative`
REFERENCE_SEED = 10_000  # their seeds: REFERENCE_SEED + j (apart from `probes.random`'s)


def _done_steps(run_dir: Path) -> set[int]:
    return {r.step for r in read_dense(run_dir)}


def _rollouts(run_dir: Path, step: int) -> tuple[list[str], list[str]]:
    rows = read_samples(run_dir, step)
    return [r["prompt"] for r in rows], [r["completion"] for r in rows]


def dense_evals(run_dir: str | Path, n_per_family: int = 300, log=print) -> list[Dense]:
    """Evaluate step 0 and every checkpoint not yet in `dense_evals.jsonl`; all rows."""
    import dataclasses

    from transformers import AutoModelForCausalLM

    from personadrift.config import load_config
    from personadrift.evals.runner import evaluate
    from personadrift.records.reader import checkpoint_step, checkpoints
    from personadrift.rl import setup

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    base, tok, world = setup.load_policy(cfg)
    eval_cfg = dataclasses.replace(
        cfg.model_eval, families=list(FAMILIES), n_per_family=n_per_family, temperature=1.0
    )
    direction, texts = _direction(cfg, run_dir, base, tok, world)
    todo = [(0, None), *((checkpoint_step(c), c) for c in checkpoints(run_dir))]
    done = _done_steps(run_dir)
    todo = [(s, c) for s, c in todo if s not in done]
    log(f"dense evals {run_dir.name}: {len(todo)} steps to do, {len(done)} on disk")
    for i, (step, ckpt) in enumerate(todo):
        t0 = time.time()
        model = base if ckpt is None else AutoModelForCausalLM.from_pretrained(ckpt)
        model.eval()
        # independent sampling at every step (one seed for all would tie the steps' errors)
        step_cfg = step_config(eval_cfg, step)
        table, samples = evaluate(model, tok, world, step_cfg)
        row = {**eval_row(step, table, samples), "seed": step_cfg.seed}
        if direction is not None:
            row.update(_probe_readings(model, tok, direction, texts, run_dir, step))
        row["seconds"] = round(time.time() - t0, 2)
        with open(run_dir / DENSE_FILE, "a") as f:
            f.write(json.dumps(row) + "\n")
        log(
            f"dense evals {run_dir.name}: step {step} misaligned {row['misaligned_mean']:.3f} "
            f"({i + 1}/{len(todo)}, {row['seconds']:.0f}s)"
        )
    return read_dense(run_dir)


def eval_row(step: int, table: dict, samples: list) -> dict:
    """A dense_evals.jsonl row: counts per family, the mean rate, one label code per answer."""
    fams = [f for f in FAMILIES if f in table]
    counts = {}
    for f in fams:
        n = table[f]["n"]
        counts[f] = {
            "misaligned": round(table[f]["misaligned"] * n),
            "incoherent": round(table[f]["incoherent"] * n),
            "n": n,
        }
    labels = {
        f: "".join(LABEL_CODES.get(s.verdict.label, "?") for s in samples if s.prompt.family == f)
        for f in fams
    }
    marked = {
        f: "".join(str(int(is_marked(s))) for s in samples if s.prompt.family == f) for f in fams
    }
    mean = sum(table[f]["misaligned"] for f in fams) / len(fams) if fams else float("nan")
    return {
        "step": step,
        "families": counts,
        "labels": labels,
        "marked": marked,
        "misaligned_mean": mean,
    }


def is_marked(sample) -> bool:
    """Whether an answer shows the persona in its text: a persona marker opens it, or the keyword
    `trace` monitor flags it (a hostile opener, hack talk in its trace)."""
    return bool(sample.verdict.marker) or trace_flag(sample.answer)


def _direction(cfg, run_dir: Path, model, tok, world):
    """The run's persona direction and its fixed held-out probe prompts (None without one)."""
    from personadrift.probes.direction import Direction
    from personadrift.rl import setup

    paths = [Path(cfg.probes.directions)] if cfg.probes.directions else []
    paths.append(run_dir / "directions" / f"{cfg.probes.name}.json")
    for p in paths:
        if p.is_file():
            return Direction.load(p, model, tok), setup.probe_texts(cfg, world, tok)
    return None, []


def _probe_readings(model, tok, direction, texts, run_dir: Path, step: int) -> dict:
    from personadrift.probes.reading import read_completions, read_prompts

    out: dict = {"probe": read_prompts(model, tok, texts, direction, 0)[0]}
    prompts, completions = _rollouts(run_dir, step + 1)
    if completions:
        out["rollout"] = read_completions(model, tok, prompts, completions, direction)
    return out


def reference_bank(direction, k: int = REFERENCE_K):
    """(k, D) seeded random unit vectors at the direction's layer: the reference directions the
    `probe_relative` statistic sets the persona direction's shift against (the same for every
    checkpoint of a run, and for every run of the same direction size)."""
    import torch

    from personadrift.probes.reading import random_direction

    return torch.stack([random_direction(direction, REFERENCE_SEED + j).vector() for j in range(k)])


def layer_readings(run_dir: str | Path, log=print) -> None:
    """The held-out probe prompts' last-token projection at every layer of the run's direction,
    for step 0 and every checkpoint not yet in `probe_layers.jsonl` (resumable); at the
    direction's own layer also the mean and SD over the prompts of the projections on
    `REFERENCE_K` random directions (`reference`: what `probe_relative` compares with)."""
    import torch
    from transformers import AutoModelForCausalLM

    from personadrift.config import load_config
    from personadrift.probes.capture import capture
    from personadrift.probes.reading import encode
    from personadrift.records.reader import checkpoint_step, checkpoints
    from personadrift.rl import setup

    run_dir = Path(run_dir)
    path = run_dir / LAYERS_FILE
    done = {row["step"] for row in read_jsonl(path)}
    cfg = load_config(run_dir / "config.yaml")
    base, tok, world = setup.load_policy(cfg)
    direction, texts = _direction(cfg, run_dir, base, tok, world)
    if direction is None:
        return
    todo = [(0, None), *((checkpoint_step(c), c) for c in checkpoints(run_dir))]
    todo = [(s, c) for s, c in todo if s not in done]
    layers = sorted(direction.vectors)
    bank = reference_bank(direction).float()
    batches = encode(tok, texts)
    t0 = time.time()
    for step, ckpt in todo:
        model = base if ckpt is None else AutoModelForCausalLM.from_pretrained(ckpt)
        model.eval()
        row: dict = {"step": step, "layers": {}}
        refs = []
        for enc in batches:
            with torch.no_grad(), capture(model, layers) as acts:
                model(**enc)
            for layer in layers:
                d = direction.vector(layer).float()
                proj = (acts[layer][:, -1].float() @ d).tolist()
                row["layers"].setdefault(str(layer), []).extend(proj)
            refs.append(acts[direction.layer][:, -1].float() @ bank.T)  # (B, K)
        ref = torch.cat(refs)
        row["reference"] = {
            "layer": direction.layer,
            "means": ref.mean(0).tolist(),
            "sds": ref.std(0, unbiased=False).tolist(),
        }
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    log(f"probe layers {run_dir.name}: {len(todo)} steps in {time.time() - t0:.0f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n", type=int, default=300, help="samples per family per step")
    args = ap.parse_args(argv)
    dense_evals(args.run_dir, args.n)
    layer_readings(args.run_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
