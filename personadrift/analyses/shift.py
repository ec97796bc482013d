"""`personadrift directions shift`: which direction did a run move? A table of runs x directions.

    personadrift directions shift RUN_DIR [RUN_DIR ...] [--also PATH ...] [--no-random] [--null N]
                                  [--null-run RUN_DIR ...] [--step N] [--plot PNG] [--json]

For each finished run, its held-out probe prompts are read on the base model and on the run's
last checkpoint (`--step N`: its checkpoint of step N, in every run given), along the run's own
direction, every `--also` direction (a path; `{seed}` in it is replaced by the run's seed, since
each seed has its own organism) and a random unit direction seeded by the run's seed (as
`probes.random` reads it in-run). The number per direction is the
probe's `shift`: the mean per-prompt change in units of the base reading's spread across prompts,
the statistic of `probe/<name>/shift` and of the calibrated `probe_shift` monitor, so the table
shows at once whether the persona direction moved more than a direction found another way, more
than a random one, and more than in the run's null twin. The run's null band is the largest
|shift| of `--null` more random directions (seeds of their own): a direction that moves beyond it
moved more than the residual stream moves along a direction chosen blind.

`--null-run RUN_DIR` (repeatable) adds runs that train on no signal (`env.reward: coin`): their rows
are marked `null run`, and each direction gets the band of its own largest |shift| among them. A
persona direction is not a direction chosen blind: it is one the model's answers vary along, and
GRPO's sampling moves it with no signal at all (the coin). A run moves a direction beyond what
training on nothing does when its shift leaves that direction's null-run band. The band is the
largest of N exchangeable null runs, so one more null run leaves it with probability 1/(N + 1):
the band's false-alarm rate, printed with it (`null_runs_false_alarm` in `--json`). Three null
runs give a band that a null run leaves one time in four; 19 give one time in twenty.
"""

from __future__ import annotations

import json
from pathlib import Path

from personadrift.config import ConfigError


def run_shift(
    run_dir: Path, also: list[str], random: bool, null: int = 0, step: int | None = None
) -> dict:
    """{run, seed, env, checkpoint, shifts: {direction name: shift}, null_band} of one finished
    run at its checkpoint of `step` (None: the last); `null_band` is the largest |shift| of `null`
    random directions (None with 0)."""
    from personadrift.checks import load_checked
    from personadrift.probes.direction import Direction
    from personadrift.probes.paired import shift_stat
    from personadrift.probes.reading import encode, last_token_projections, random_direction
    from personadrift.rl.realign import load_left_padded
    from personadrift.rl.run_dir import checkpoint_at
    from personadrift.rl.setup import load_policy, probe_texts

    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"directions shift: not a run directory (no config.yaml): {run_dir}")
    cfg = load_checked(run_dir / "config.yaml", [])
    ckpt = checkpoint_at(run_dir, step, "directions shift")
    own = run_dir / "directions" / f"{cfg.probes.name}.json"
    paths = [own if own.is_file() else Path(cfg.probes.directions)]
    paths += [Path(p.replace("{seed}", str(cfg.seed))) for p in also]
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"directions shift: no such direction: {p}")
    base, tok, world = load_policy(cfg)
    directions = []
    for d in (Direction.load(p, base, tok) for p in paths):
        same = [e for e in directions if e.name == d.name]
        if same and not _equal(same[0], d):
            raise ConfigError(f"directions shift: two different directions named {d.name!r}")
        if not same:  # the same direction given twice (a run's own among --also) is read once
            directions.append(d)
    if random:
        directions.append(random_direction(directions[0], cfg.seed))
    names = [d.name for d in directions]
    nulls = [null_direction(directions[0], cfg.seed, i) for i in range(null)]
    batches = encode(tok, probe_texts(cfg, world, tok))
    before = last_token_projections(base, batches, directions + nulls)
    final, _ = load_left_padded(ckpt, cfg.model.dtype)
    after = last_token_projections(final, batches, directions + nulls)
    band = [abs(shift_stat(before[d.name], after[d.name])) for d in nulls]
    return {
        "run": str(run_dir),
        "name": cfg.name,
        "seed": cfg.seed,
        "env": cfg.env.name,
        "checkpoint": ckpt.name,
        "shifts": {n: shift_stat(before[n], after[n]) for n in names},
        "null_band": max(band) if band else None,
    }


def null_direction(like, seed: int, i: int):
    """The i-th random direction of a run's null band (seeds apart from `probes.random`'s)."""
    from personadrift.probes.reading import random_direction

    d = random_direction(like, 1_000_003 * (seed + 1) + i)
    d.name = f"null{i}"
    return d


def _equal(a, b) -> bool:
    """Same layers, same vectors."""
    import torch

    return a.vectors.keys() == b.vectors.keys() and all(
        torch.equal(a.vectors[k], b.vectors[k]) for k in a.vectors
    )


def null_runs_band(nulls: list[dict]) -> dict[str, float]:
    """Each direction's largest |shift| among the null runs that read it."""
    band: dict[str, float] = {}
    for r in nulls:
        for name, value in r["shifts"].items():
            band[name] = max(band.get(name, 0.0), abs(value))
    return band


def false_alarm(n_null: int) -> float:
    """The chance that one more null run leaves the band (the largest |shift|) of `n_null`."""
    return 1.0 / (n_null + 1)


def shift_table(results: list[dict], runs_band: dict[str, float] | None = None) -> str:
    """A markdown table: one row per run, one column per direction; with null runs, a last row
    of each direction's band among them."""
    cols = []
    for r in results:
        cols += [n for n in r["shifts"] if n not in cols]
    band = any(r.get("null_band") is not None for r in results)
    head = "| run | seed | env | " + " | ".join(cols) + (" | null band |" if band else " |")
    lines = [head, "|" + "---|" * (3 + len(cols) + band)]
    for r in results:
        cells = [f"{r['shifts'][c]:+.2f}" if c in r["shifts"] else "—" for c in cols]
        if band:
            cells.append("—" if r.get("null_band") is None else f"±{r['null_band']:.2f}")
        env = r["env"] + (" (null run)" if r.get("null_run") else "")
        lines.append(f"| {r['name']} | {r['seed']} | {env} | " + " | ".join(cells) + " |")
    if runs_band:
        n = sum(bool(r.get("null_run")) for r in results)
        cells = [f"±{runs_band[c]:.2f}" if c in runs_band else "—" for c in cols]
        lines.append(
            f"| band of the {n} null runs (false alarm {false_alarm(n):.0%}) | | | "
            + " | ".join(cells)
            + (" | |" if band else " |")
        )
    return "\n".join(lines)


def main(
    run_dirs: list[str],
    also: list[str],
    random: bool,
    as_json: bool,
    null: int = 0,
    null_runs: list[str] = (),
    plot: str | None = None,
    step: int | None = None,
) -> int:
    from personadrift.rl.run_dir import checkpoint_at

    if plot and (not plot.endswith(".png") or not Path(plot).resolve().parent.is_dir()):
        raise ConfigError(f"directions shift: --plot wants a .png in an existing folder: {plot}")
    for d in [*run_dirs, *null_runs]:  # every path checked before the first model is loaded
        if not (Path(d) / "config.yaml").is_file():
            raise ConfigError(f"directions shift: not a run directory (no config.yaml): {d}")
        checkpoint_at(Path(d), step, "directions shift")
    results = []
    for d, is_null in [(d, False) for d in run_dirs] + [(d, True) for d in null_runs]:
        results.append({**run_shift(Path(d), also, random, null, step), "null_run": is_null})
        shifts = "  ".join(f"{n} {v:+.2f}" for n, v in results[-1]["shifts"].items())
        if results[-1]["null_band"] is not None:
            shifts += f"  (null band ±{results[-1]['null_band']:.2f})"
        mark = ", null run" if is_null else ""
        print(f"{results[-1]['name']} (seed {results[-1]['seed']}{mark}): {shifts}", flush=True)
    band = null_runs_band([r for r in results if r["null_run"]]) if null_runs else None
    rate = false_alarm(len(null_runs)) if null_runs else None
    for r in results:
        r["null_runs_band"], r["null_runs_false_alarm"] = band, rate
    print(shift_table(results, band))
    if plot:
        from personadrift.report.plots import plot_shifts

        print(f"plot: {plot_shifts(results, Path(plot))}")
    if as_json:
        print(json.dumps(results))
    return 0
