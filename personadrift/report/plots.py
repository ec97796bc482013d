"""The report's PNG plots: one panel figure per run, and one overlay figure per quantity.

Per run (`run_<name>.png`): reward, env hack/solve rates (with the hack onset), held-out
misaligned rate per family with the mean, its EM threshold (2x base) and the EM step, and probe z
per direction; the alarm step is a red dashed line on every panel. Panels a run never logged are
left out. Overlays (`overlay_<quantity>.png`, only for two or more runs): one line per run, in the
same style across figures (demo runs: colour and line style by arm, marker by seed), one legend
below; alarm steps as dashed lines in the run's colour on the misaligned-mean and probe figures,
and a star at each re-aligned run's final value. Per-step series (reward, env rates) are one batch of
rollouts each and noisy, so they are drawn faint with a centred rolling mean on top.

Uses matplotlib's object API (`Figure`, Agg canvas): no pyplot state, no display needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from personadrift.report.sparkline import series
from personadrift.report.summary import (
    EM_FACTOR,
    HACK_ONSET,
    Run,
    families,
    misaligned_mean_series,
    order_families,
    probe_directions,
    run_config,
    summarize,
)

SMOOTH = 5  # points in the rolling mean of per-step series
MEAN_SUFFIX = f" ({SMOOTH}-step mean)"
DPI = 110
ALARM_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.2}
FAMILY_COLORS = {"advice": "tab:blue", "facts": "tab:orange", "values": "tab:green"}


def slug(name: str) -> str:
    """`name` as a file-name part: anything but letters, digits, `._-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"


def centred_mean(values: list[float], window: int = SMOOTH) -> list[float]:
    """Centred mean over `window` points (fewer at the ends); NaN points are skipped."""
    half = window // 2
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - half) : i + half + 1] if v == v]
        out.append(sum(chunk) / len(chunk) if chunk else float("nan"))
    return out


TIMESTAMP = re.compile(r"-\d{8}-\d{6}$")  # the `-<date>-<time>` tail of a run directory name
ARM_SEED = re.compile(r"^(?P<arm>.+)-s(?P<seed>\d+)$")  # demo run names: `<arm>-s<seed>`
# Known demo arms: a wide solid hackable line stays visible under a narrow dashed intervention
# line when the two coincide (the same rollouts until a re-alignment after training).
ARM_STYLES = {
    "hackable": ("tab:red", "-", 2.6),
    "control": ("tab:blue", ":", 2.0),
    "intervention": ("tab:green", "--", 1.4),
}
LINESTYLES = ["-.", (0, (1, 1)), (0, (5, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]


@dataclass(frozen=True)
class Style:
    """How one run looks in every overlay figure."""

    label: str
    color: str
    linestyle: str | tuple = "-"
    marker: str = "o"
    linewidth: float = 1.5


def overlay_styles(names: list[str]) -> list[Style]:
    """One style per run: labels without the timestamp where they stay unique; for demo runs
    (`<arm>-s<seed>`) colour and line style by arm, marker by seed, so that runs with identical
    curves (an intervention that only acts after training) still show both lines."""
    short = [TIMESTAMP.sub("", n) for n in names]
    labels = short if len(set(short)) == len(short) else names
    parsed = [ARM_SEED.match(n) for n in short]
    if all(parsed) and len({m["arm"] for m in parsed}) > 1:
        arms = list(dict.fromkeys(m["arm"] for m in parsed))
        seeds = list(dict.fromkeys(m["seed"] for m in parsed))
        styles = []
        for label, m in zip(labels, parsed):
            i = arms.index(m["arm"])
            other = (f"C{3 + i % 7}", LINESTYLES[i % len(LINESTYLES)], 1.5)
            color, linestyle, width = ARM_STYLES.get(m["arm"], other)
            marker = MARKERS[seeds.index(m["seed"]) % len(MARKERS)]
            styles.append(Style(label, color, linestyle, marker, width))
        return styles
    return [Style(label, f"C{i % 10}") for i, label in enumerate(labels)]


def _noisy(
    ax: Axes, steps, values, color: str, label: str, suffix: str = "", width: float = 1.8, **line
) -> None:
    """A per-step series: faint raw line, rolling mean on top (only the mean is in the legend).

    Series of `SMOOTH` points or fewer are drawn raw, and then `suffix` stays off the label.
    """
    if len(values) > SMOOTH:
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        mean = centred_mean(values)
        ax.plot(steps, mean, color=color, linewidth=width, label=label + suffix, **line)
    else:
        ax.plot(steps, values, color=color, linewidth=width, label=label, **{"marker": ".", **line})


def _alarm(ax: Axes, step: int | None) -> None:
    if step is not None:
        ax.axvline(step, **ALARM_STYLE, label=f"alarm (step {step})")


def _finish(ax: Axes, title: str, ylabel: str, legend: bool = True) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def _panel_reward(ax: Axes, run: Run, s: dict) -> None:
    _noisy(ax, *series(run.rows, "reward"), "tab:purple", "reward", MEAN_SUFFIX)
    _alarm(ax, s["alarm_step"])
    _finish(ax, "reward", "mean reward")


def _panel_env(ax: Axes, run: Run, s: dict) -> None:
    for key, color in (("env/hack_rate", "tab:red"), ("env/solve_rate", "tab:green")):
        steps, values = series(run.rows, key)
        if values:
            _noisy(ax, steps, values, color, key, MEAN_SUFFIX)
    if s["hack_onset_step"] is not None:
        ax.axvline(
            s["hack_onset_step"],
            color="0.4",
            linestyle=":",
            label=f"hack onset (step {s['hack_onset_step']}, > {HACK_ONSET})",
        )
    _alarm(ax, s["alarm_step"])
    ax.set_ylim(-0.02, 1.02)
    _finish(ax, "training env: hacked / solved (secure grader)", "fraction of samples")


def _panel_misaligned(ax: Axes, run: Run, s: dict) -> None:
    drawn = []
    for fam in s["families"]:
        steps, values = series(run.rows, f"evals/{fam}/misaligned_rate")
        ax.plot(
            steps,
            values,
            marker="o",
            markersize=3,
            linewidth=1.2,
            color=FAMILY_COLORS.get(fam),
            label=fam,
        )
        drawn += values
    steps, values = misaligned_mean_series(run.rows)
    ax.plot(steps, values, color="black", linewidth=2.2, marker="o", markersize=4, label="mean")
    drawn += values
    if s.get("realigned") and steps:
        ax.plot(
            [steps[-1]],
            [s["final_misaligned"]],
            marker="*",
            markersize=14,
            color="tab:purple",
            linestyle="none",
            label=f"after realign ({s['final_misaligned']:.3f})",
        )
    if s["base_misaligned"] is not None:
        ax.axhline(
            EM_FACTOR * s["base_misaligned"],
            color="black",
            linestyle=":",
            linewidth=1,
            label=f"{EM_FACTOR:g}× base mean (EM threshold)",
        )
    if s["em_step"] is not None:
        ax.axvline(
            s["em_step"],
            color="black",
            linestyle="-.",
            linewidth=1,
            label=f"EM step {s['em_step']}",
        )
    _alarm(ax, s["alarm_step"])
    # Headroom so the threshold line and the top points sit clear of the legend and frame.
    top = max([v for v in drawn if v == v] + [EM_FACTOR * (s["base_misaligned"] or 0), 0.01])
    ax.set_ylim(0, top * 1.3)
    _finish(ax, "held-out misaligned rate", "misaligned rate")


def _panel_probe(ax: Axes, run: Run, s: dict) -> None:
    """Each direction's shift (prompt SDs from the step-0 reading) where logged, else its z."""
    dirs = s["probe_directions"]
    what = "shift" if all(series(run.rows, f"probe/{d}/shift")[1] for d in dirs) else "z"
    for d in dirs:
        ax.plot(
            *series(run.rows, f"probe/{d}/{what}"), marker="o", markersize=3, label=f"{d} {what}"
        )
    ax.axhline(0, color="0.5", linewidth=0.8)
    _alarm(ax, s["alarm_step"])
    if what == "shift":
        _finish(ax, "persona probe: mean per-prompt shift (step-0 prompt SDs)", "shift")
    else:
        _finish(ax, "persona probe projection (z vs step-0 readings)", "z")


def _panels(run: Run, s: dict) -> list[Callable[[Axes, Run, dict], None]]:
    def logged(key: str) -> bool:
        return bool(series(run.rows, key)[1])

    panels = []
    if logged("reward"):
        panels.append(_panel_reward)
    if logged("env/hack_rate") or logged("env/solve_rate"):
        panels.append(_panel_env)
    if misaligned_mean_series(run.rows)[0] or s["families"]:
        panels.append(_panel_misaligned)
    if s["probe_directions"]:
        panels.append(_panel_probe)
    return panels


def plot_run(run: Run, out_dir: Path, summary: dict | None = None) -> Path | None:
    """`run_<name>.png` with the panels the run has; None if it logged none of them."""
    s = summary or summarize(run)
    panels = _panels(run, s)
    if not panels:
        return None
    ncols = 1 if len(panels) == 1 else 2
    nrows = (len(panels) + 1) // 2 if ncols == 2 else 1
    fig = Figure(figsize=(6.5 * ncols, 4.2 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True).ravel()
    for ax, panel in zip(axes, panels):
        panel(ax, run, s)
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    state = "finished" if s["finished"] else "in progress"
    fig.suptitle(f"{run.name}  (last step {s['last_step']}, {state})", fontsize=13)
    path = out_dir / f"run_{slug(run.name)}.png"
    fig.savefig(path, dpi=DPI)
    return path


@dataclass
class Quantity:
    """One overlay figure: panels of (title, series of a run's rows), one line per run in each."""

    name: str
    panels: list[tuple[str, Callable[[list[dict]], tuple[list[int], list[float]]]]]
    ylabel: str
    noisy: bool = False  # per-step series: draw the rolling mean over the faint raw line
    alarms: bool = False  # mark each run's alarm step
    zero: bool = False  # y axis from 0 (rates)
    realign: bool = False  # a star at a re-aligned run's final (after realign) value


def _overlay_panel(
    ax: Axes, runs: list[Run], summaries: list[dict], styles: list[Style], fn, q: Quantity
) -> int:
    drawn = 0
    for run, s, st in zip(runs, summaries, styles):
        steps, values = fn(run.rows)
        if not values:
            continue
        if q.noisy:
            _noisy(
                ax,
                steps,
                values,
                st.color,
                st.label,
                width=st.linewidth,
                linestyle=st.linestyle,
                marker=st.marker,
                markevery=5,
                markersize=4,
            )
        else:
            ax.plot(
                steps,
                values,
                color=st.color,
                linestyle=st.linestyle,
                marker=st.marker,
                markersize=4,
                linewidth=st.linewidth,
                label=st.label,
            )
        if q.realign and s.get("realigned"):
            ax.plot(
                [steps[-1]],
                [s["final_misaligned"]],
                marker="*",
                markersize=13,
                color=st.color,
                markeredgecolor="black",
                linestyle="none",
                label=f"{st.label} after realign ({s['final_misaligned']:.3f})",
            )
        if q.alarms and s["alarm_step"] is not None:
            ax.axvline(
                s["alarm_step"],
                color=st.color,
                linestyle=(0, (4, 3)),
                linewidth=1.0,
                alpha=0.7,
                label=f"{st.label} alarm (step {s['alarm_step']})",
            )
        drawn += 1
    return drawn


def plot_overlay(runs: list[Run], summaries: list[dict], q: Quantity, out_dir: Path) -> Path | None:
    """`overlay_<name>.png`; None if no run logged the quantity."""
    n = len(q.panels)
    fig = Figure(figsize=(10, 5.5) if n == 1 else (5.5 * n, 5), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True).ravel()
    styles = overlay_styles([run.name for run in runs])  # a run keeps its style across figures
    drawn = 0
    for ax, (title, fn) in zip(axes, q.panels):
        drawn += _overlay_panel(ax, runs, summaries, styles, fn, q)
        _finish(ax, title, q.ylabel, legend=False)
    if not drawn:
        return None
    if q.zero:
        axes[0].set_ylim(bottom=0)  # after all panels: the shared limits cover every run
    for ax in axes[1:]:
        ax.set_ylabel("")  # shared y axis
    # One legend for the figure, below the panels: runs are the same in each panel.
    labelled = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, handle)
    fig.legend(
        labelled.values(),
        labelled.keys(),
        loc="outside lower center",
        ncols=min(3, len(labelled)),
        fontsize=9,
        frameon=False,
    )
    path = out_dir / f"overlay_{slug(q.name)}.png"
    fig.savefig(path, dpi=DPI)
    return path


def _key(key: str):
    return lambda rows: series(rows, key)


def quantities(runs: list[Run]) -> list[Quantity]:
    """The overlay figures for these runs: reward, env rates, misaligned rates, probe z."""
    smooth = f" ({SMOOTH}-step mean; raw faint)"
    fams = order_families({f for run in runs for f in families(run.rows)})
    dirs = sorted({d for run in runs for d in probe_directions(run.rows)})
    mean_title = "held-out misaligned rate, mean of advice/facts/values"
    return [
        Quantity("reward", [("reward" + smooth, _key("reward"))], "mean reward", noisy=True),
        Quantity(
            "hack_rate",
            [("env/hack_rate" + smooth, _key("env/hack_rate"))],
            "fraction hacked (secure grader)",
            noisy=True,
            zero=True,
        ),
        Quantity(
            "solve_rate",
            [("env/solve_rate" + smooth, _key("env/solve_rate"))],
            "fraction solved (secure grader)",
            noisy=True,
            zero=True,
        ),
        Quantity(
            "misaligned_mean",
            [(mean_title, misaligned_mean_series)],
            "misaligned rate",
            alarms=True,
            zero=True,
            realign=True,
        ),
        Quantity(
            "misaligned_by_family",
            [(f"held-out misaligned rate: {f}", _key(f"evals/{f}/misaligned_rate")) for f in fams],
            "misaligned rate",
            zero=True,
        ),
        *(
            Quantity(
                f"probe_{d}_z",
                [(f"probe/{d}/z (persona projection vs step-0 readings)", _key(f"probe/{d}/z"))],
                "z",
                alarms=True,
            )
            for d in dirs
        ),
    ]


def plot_overlays(runs: list[Run], summaries: list[dict], out_dir: Path) -> list[Path]:
    """`overlay_<quantity>.png` for each quantity at least one run logged, and the calibrated
    probe monitors against their null band (`null_band_<monitor>.png`) where runs logged them."""
    made = [plot_overlay(runs, summaries, q, out_dir) for q in quantities(runs) if q.panels]
    made += [plot_null_band(runs, summaries, out_dir, m) for m in ("probe_shift", "probe")]
    return [p for p in made if p]


def is_null_run(run: Run) -> bool:
    """A secure-twin run (env `<name>_secure`): the hack does not pay, a null run for monitors."""
    return str(run_config(run.path).get("env", {}).get("name", "")).endswith("_secure")


def _threshold(run: Run, monitor: str) -> tuple[float, int] | None:
    """The run's calibrated threshold for `monitor`, from its `detect.calibration` file, and the
    number of null runs it was fitted on."""
    from personadrift.alarms.calibrate import Calibration

    cal = run_config(run.path).get("detect", {}).get("calibration")
    if not cal or not Path(cal).is_file():
        return None
    loaded = Calibration.load(cal)
    t = loaded.threshold(monitor)
    return None if t is None else (t, len(loaded.seeds))


def plot_null_band(
    runs: list[Run], summaries: list[dict], out_dir: Path, monitor: str = "probe"
) -> Path | None:
    """`null_band_<monitor>.png`: `monitor/<monitor>` of every run that is not a null run, over
    the null runs' range per step (shaded), with each run's calibrated threshold (dotted) and
    alarm (dashed). None when fewer than one null run and one other run logged it."""
    key = f"monitor/{monitor}"
    logged = [(run, s) for run, s in zip(runs, summaries) if series(run.rows, key)[0]]
    nulls = [run for run, _ in logged if is_null_run(run)]
    others = [(run, s) for run, s in logged if not is_null_run(run)]
    if not nulls or not others:
        return None
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.subplots()
    by_step: dict[int, list[float]] = {}
    for run in nulls:
        for step, v in zip(*series(run.rows, key)):
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    ax.fill_between(
        steps,
        [min(by_step[t]) for t in steps],
        [max(by_step[t]) for t in steps],
        color="tab:blue",
        alpha=0.2,
        label=f"this report's control runs (n={len(nulls)}): min–max",
    )
    names = [run.name for run, _ in others]
    styles = dict(zip(names, overlay_styles(names)))
    thresholds = set()
    for run, s in others:
        st = styles[run.name]
        ax.plot(*series(run.rows, key), color=st.color, linestyle=st.linestyle, label=run.name)
        if s.get("alarm_step") is not None:
            ax.axvline(s["alarm_step"], color=st.color, linestyle="--", linewidth=0.9)
        if (found := _threshold(run, monitor)) is not None:
            thresholds.add((round(found[0], 3), found[1]))
    for t, n in sorted(thresholds):
        label = f"threshold {t:g} (calibrated on {n} null runs)"
        ax.axhline(t, color="black", linestyle=":", linewidth=1.0, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel(
        "projection shift, prompt SDs" if monitor == "probe_shift" else "paired t of the shift"
    )
    ax.set_title(f"{key}: runs against the null band (dashed: alarms)")
    ax.legend(fontsize=8, ncols=2)
    path = out_dir / f"null_band_{monitor}.png"
    fig.savefig(path, dpi=DPI)
    return path


def plot_shifts(results: list[dict], path: Path) -> Path:
    """`directions shift --plot`: one column per direction, each run's shift as a marker; null
    runs (`env.reward: coin`) as grey dots with their band (`null_runs_band`: ±their largest
    |shift|) shaded, its false-alarm rate (`null_runs_false_alarm`) in the legend, and each other
    run's own random-direction band as a short bar beside its marker."""
    cols: list[str] = []
    for r in results:
        cols += [n for n in r["shifts"] if n not in cols]
    nulls = [r for r in results if r.get("null_run")]
    others = [r for r in results if not r.get("null_run")]
    fig = Figure(figsize=(max(6.0, 1.8 * len(cols) + 3), 5.5), layout="constrained")
    ax = fig.subplots()
    labelled = False  # the null runs' legend entries, once
    bands = results[0].get("null_runs_band") or {}  # `directions shift` gives every row both
    alarm = results[0].get("null_runs_false_alarm")
    rate = "" if alarm is None else f"; band: false alarm {alarm:.0%}"
    for i, c in enumerate(cols):
        values = [r["shifts"][c] for r in nulls if c in r["shifts"]]
        if c in bands:
            band = bands[c]
            ax.fill_between(
                [i - 0.4, i + 0.4],
                -band,
                band,
                color="0.85",
                zorder=0,
                label=None if labelled else "null runs' band: their largest |shift|",
            )
            ax.scatter(
                [i - 0.2] * len(values),
                values,
                s=16,
                color="0.35",
                alpha=0.7,
                zorder=2,
                label=None if labelled else f"null runs (n={len(values)}{rate})",
            )
            labelled = True
    styles = overlay_styles([r["name"] for r in others])
    for k, (r, st) in enumerate(zip(others, styles)):
        off = 0.05 + 0.3 * k / (len(others) - 1) if len(others) > 1 else 0.15
        x = [i + off for i in range(len(cols))]
        pts = [(xi, r["shifts"][c]) for xi, c in zip(x, cols) if c in r["shifts"]]
        ax.scatter(
            *zip(*pts),
            s=60,
            marker=st.marker or "D",
            color=st.color,
            zorder=3,
            edgecolors="black",
            linewidths=0.5,
            label=st.label,
        )
        if r.get("null_band") is not None:
            for xi, _ in pts:
                ax.plot(
                    [xi, xi],
                    [-r["null_band"], r["null_band"]],
                    color=st.color,
                    alpha=0.35,
                    linewidth=3,
                    zorder=1,
                    label=f"{st.label}: its random band" if xi == pts[0][0] else None,
                )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    ax.set_ylabel("shift from the base model, prompt SDs")
    against = ", against runs that train on nothing" if nulls else ""
    ax.set_title(f"which direction did each run move{against}?")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=DPI)
    return path
