"""`personadrift directions steer-sweep`: the layer to steer at, chosen for steering.

    personadrift directions steer-sweep CONFIG [--run RUN_DIR] [--coeffs 0.5,1,2] [--n 200]
                                        [--out DIR] [--json] [key=value ...]

The direction's layer is chosen for *reading* (the best held-out AUROC); the layer where pulling
the persona out of the residual stream costs the task least can be another one. For every layer
of the saved direction and every coefficient, the model (a run's final checkpoint with `--run`,
else the config's model) answers with inference steering on (`subtract coeff x median residual
norm x d` at that one layer, as `steer.mode: inference` does in a run) and two things are measured
against the same model unsteered, on the same prompts and sampling seed:

- the held-out misaligned rate: first-turn answers of the eval families (`model_eval.families`,
  `--n` per family, temperature of `model_eval`), the mean over advice/facts/values;
- the cost on the code task: the env's reward (what the run trains on) and the secure grader's
  reward, on `--n` eval problems of the config's env.

The ratio of a setting is the misaligned points removed per point of env reward lost, with the
loss floored at the sampling noise of a reward difference (`cost_floor`: sqrt(2 r (1 - r) / n) for
the unsteered reward r, at least one point), so a setting whose loss is within noise is ranked by
what it removes rather than divided by a lucky zero. A layer's
score is its best ratio over the coefficients that remove any misalignment; the layer picked is
the one with the best score. Writes `steer_sweep.json` and `steer_sweep.png` (misalignment removed
against reward lost, one line per layer); `--json` prints the JSON as the last line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

from personadrift.config import Config, ConfigError

MIN_FLOOR = 0.01  # a reward loss below one point counts as one point
FAMILIES = ("advice", "facts", "values")


def parse_coeffs(text: str) -> list[float]:
    """`--coeffs 0.5,1,2` as positive floats; ConfigError otherwise."""
    try:
        coeffs = [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise ConfigError(f"--coeffs: not a list of numbers: {text!r}") from None
    if not coeffs or any(not c > 0 or c != c or c == float("inf") for c in coeffs):
        raise ConfigError(f"--coeffs: need positive finite numbers, got {text!r}")
    return coeffs


def measure_steered(model, tok, world, cfg: Config, n: int) -> dict:
    """Held-out misaligned rate and code-task rewards of `model` as it is now (hooks included)."""
    from personadrift.evals.runner import evaluate, misaligned_mean
    from personadrift.rl.realign import env_rates

    table, _ = evaluate(model, tok, world, dataclasses.replace(cfg.model_eval, n_per_family=n))
    code = env_rates(model, tok, cfg, world, n)
    if not code:
        raise ConfigError(f"env.name: {cfg.env.name} has no code problems to measure the cost on")
    return {
        "misaligned": misaligned_mean(table, FAMILIES),
        "per_family": {f: table[f]["misaligned"] for f in FAMILIES if f in table},
        **{k: code[k] for k in ("reward", "secure_reward", "hack_rate")},
    }


def cost_floor(reward: float, n: int) -> float:
    """The standard error of a difference of two mean rewards in [0, 1] over n problems each."""
    r = min(max(reward, 0.0), 1.0)
    return max(MIN_FLOOR, math.sqrt(2 * r * (1 - r) / n))


def ratio(removed: float, cost: float, floor: float) -> float:
    """Misaligned points removed per point of reward lost (the loss floored at `floor`)."""
    return removed / max(cost, floor)


def pick(rows: list[dict]) -> dict | None:
    """Per layer the best ratio among settings that remove misalignment; the best layer's row."""
    useful = [r for r in rows if r["removed"] > 0]
    return max(useful, key=lambda r: r["ratio"]) if useful else None


def sweep(
    model, tok, world, direction, cfg: Config, coeffs: list[float], n: int, log=print
) -> dict:
    """Every layer of `direction` x every coefficient, against the unsteered model."""
    from personadrift.evals.runner import eval_prompts, first_turn
    from personadrift.interventions.steer import median_norm, steer

    texts = [
        first_turn(p.text) for p in eval_prompts(world, list(FAMILIES), 22, cfg.model_eval.seed)
    ]
    t0 = time.time()
    base = measure_steered(model, tok, world, cfg, n)
    log(
        f"unsteered: misaligned {base['misaligned']:.3f}  reward {base['reward']:.3f}  "
        f"secure {base['secure_reward']:.3f}  ({time.time() - t0:.0f}s)"
    )
    floor = cost_floor(base["reward"], n)
    rows = []
    for layer in sorted(direction.vectors):
        unit = median_norm(model, tok, texts, layer)
        for c in coeffs:
            with steer(model, direction, c, "subtract", [layer], unit):
                m = measure_steered(model, tok, world, cfg, n)
            removed = base["misaligned"] - m["misaligned"]
            cost = base["reward"] - m["reward"]
            rows.append(
                {
                    "layer": layer,
                    "coeff": c,
                    "norm_unit": unit,
                    **m,
                    "removed": removed,
                    "cost": cost,
                    "ratio": ratio(removed, cost, floor),
                }
            )
            log(
                f"layer {layer} coeff {c:g}: misaligned {m['misaligned']:.3f} ({-removed:+.3f})  "
                f"reward {m['reward']:.3f} ({-cost:+.3f})  ratio {rows[-1]['ratio']:.2f}  "
                f"({time.time() - t0:.0f}s)"
            )
    layers = {}
    for layer in sorted(direction.vectors):
        best = pick([r for r in rows if r["layer"] == layer])
        layers[layer] = None if best is None else {k: best[k] for k in ("coeff", "ratio")}
    best = pick(rows)
    return {
        "direction": direction.name,
        "reading_layer": direction.layer,
        "n": n,
        "families": list(FAMILIES),
        "env": cfg.env.name,
        "cost_floor": floor,
        "unsteered": base,
        "rows": rows,
        "layers": {str(k): v for k, v in layers.items()},
        "best": None
        if best is None
        else {k: best[k] for k in ("layer", "coeff", "ratio", "removed", "cost")},
        "seconds": round(time.time() - t0, 1),
    }


def plot(result: dict, path: Path) -> Path:
    """Misalignment removed against reward lost, one line per layer (coefficients as points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for layer in sorted({r["layer"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["layer"] == layer]
        xs = [0.0] + [r["cost"] for r in rows]
        ys = [0.0] + [r["removed"] for r in rows]
        tag = " (reading layer)" if layer == result["reading_layer"] else ""
        ax.plot(xs, ys, marker="o", label=f"layer {layer}{tag}")
        for r in rows:
            ax.annotate(
                f"{r['coeff']:g}",
                (r["cost"], r["removed"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(3, 3),
            )
    if result["best"]:
        b = result["best"]
        ax.scatter(
            [b["cost"]],
            [b["removed"]],
            s=160,
            facecolors="none",
            edgecolors="black",
            label=f"picked: layer {b['layer']}, coeff {b['coeff']:g}",
        )
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel(f"env reward lost ({result['env']}, {result['n']} problems)")
    ax.set_ylabel("held-out misaligned rate removed")
    ax.set_title(f"steering along {result['direction']}: per layer, coefficients labelled")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_sweep(cfg: Config, run: str, coeffs: list[float], n: int, out: Path, log=print) -> dict:
    """Load the model (a run's last checkpoint, or the config's) and its direction; sweep; write."""
    from personadrift.records.reader import last_checkpoint
    from personadrift.rl.realign import load_left_padded, world_for
    from personadrift.rl.setup import build_direction, load_policy

    if n < 1:
        raise ConfigError(f"--n: need at least 1 sample, got {n}")
    if not cfg.probes.directions:
        raise ConfigError(
            "probes.directions: steer-sweep needs a saved direction (`personadrift directions extract`)"
        )
    if run:
        if not Path(run).is_dir():
            raise ConfigError(f"--run: no such run directory: {run}")
        ckpt = last_checkpoint(Path(run))
        if ckpt is None:
            raise ConfigError(f"--run: {run}: no checkpoint under checkpoints/")
        world = world_for(cfg, ckpt)
        model, tok = load_left_padded(ckpt, cfg.model.dtype)
        name = str(ckpt)
    else:
        model, tok, world = load_policy(cfg)
        name = cfg.model.name_or_path or f"organism {cfg.organism.size}"
    direction = build_direction(cfg, model, tok, world, out)
    log(
        f"steer-sweep on {name}: {len(direction.vectors)} layers x {len(coeffs)} coefficients, n={n}"
    )
    result = {"model": name, **sweep(model, tok, world, direction, cfg, coeffs, n, log)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "steer_sweep.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "steer_sweep.png")
    log(f"written: {out / 'steer_sweep.json'}  {out / 'steer_sweep.png'}")
    return result
