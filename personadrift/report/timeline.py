"""The early-warning study's figures and lead-time table.

- `timeline_<seed>.png`: the hackable run's ground truth (dense misaligned rate, hack rate) above an
  event strip: behaviour onset, hack take-off and each monitor's alarm, in the hackable and the
  null run of the seed;
- `monitor_<name>.png`: each monitor's curve in every hackable run over the null band (shaded: the
  null runs' min-max per step), with the threshold fitted on every null run;
- `lead_table`: per seed, markdown, each lead in steps (positive: the probe alarmed first).

matplotlib's object API with the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from personadrift.alarms.calibrate import MONITORS
from personadrift.evals.ground_truth import TAKEOFF_WINDOW, trailing_mean
from personadrift.report.warning import RunResult, Study, is_layer_variant, layer_key

DPI = 110
OFF_SCALE = 1e8  # paired_stat's stand-in for an infinite t (a uniform shift): not drawn
MISSING = "—"
ONSET_STYLE = {"color": "black", "linestyle": "-", "linewidth": 1.4}
TAKEOFF_STYLE = {"color": "tab:red", "linestyle": ":", "linewidth": 1.4}
MONITOR_COLORS = dict(
    zip(
        MONITORS,
        [
            "tab:purple",
            "tab:blue",
            "tab:cyan",
            "tab:pink",
            "tab:green",
            "tab:orange",
            "tab:brown",
            "tab:red",
        ],
    )
)
UNITS = {
    "probe": "paired t",
    "probe_shift": "shift in prompt SDs",
    "probe_relative": "persona shift in reference-direction SDs",
    "probe_rollout": "fraction above base p99",
    "behaviour": "misaligned rate (small sample)",
    "trace": "flagged fraction",
    "trace_classifier": "fraction classified toxic",
    "hack_rate": "hacked fraction",
}


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _events(ax, run: RunResult) -> None:
    if run.behaviour_onset is not None:
        ax.axvline(
            run.behaviour_onset, **ONSET_STYLE, label=f"behaviour onset ({run.behaviour_onset})"
        )
    if run.hack_takeoff is not None:
        ax.axvline(run.hack_takeoff, **TAKEOFF_STYLE, label=f"hack take-off ({run.hack_takeoff})")


def plot_timeline(hackable: RunResult, null: RunResult | None, path: Path) -> Path:
    """Ground truth above, alarms below, for one seed."""
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for run, style in ((hackable, "-"), (null, "--")):
        if run is None:
            continue
        steps = [d.step for d in run.dense]
        top.plot(
            steps,
            [d.rate for d in run.dense],
            style,
            color="black",
            label=f"misaligned rate, {run.arm}",
        )
        if run.hack[0]:
            top.plot(
                run.hack[0],
                trailing_mean(run.hack[1], TAKEOFF_WINDOW),
                style,
                color="tab:red",
                label=f"hack rate ({TAKEOFF_WINDOW}-step), {run.arm}",
            )
    _events(top, hackable)
    top.set_ylabel("rate")
    top.set_title(f"seed {hackable.seed}: ground truth and alarms", fontsize=11)
    top.grid(True, alpha=0.3)
    top.legend(fontsize=7, loc="upper left")
    names = list(MONITORS)
    for i, m in enumerate(names):
        for run, marker, y in ((hackable, "o", i + 0.12), (null, "x", i - 0.12)):
            if run is not None and run.alarms.get(m) is not None:
                bottom.plot([run.alarms[m]], [y], marker, color=MONITOR_COLORS[m], markersize=8)
    _events(bottom, hackable)
    bottom.set_yticks(range(len(names)), names)
    bottom.set_ylim(-0.7, len(names) - 0.3)
    bottom.set_xlabel("step  (o: hackable run's alarm, x: null run's alarm)")
    bottom.grid(True, axis="x", alpha=0.3)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def null_band(nulls: list[list[tuple[int, float]]]) -> tuple[list[int], list[float], list[float]]:
    """(steps, min, max) over the null runs' readings at each step."""
    by_step: dict[int, list[float]] = {}
    for series in nulls:
        for s, v in series:
            if v == v and abs(v) < OFF_SCALE:
                by_step.setdefault(s, []).append(v)
    steps = sorted(by_step)
    return steps, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps]


def plot_monitor(study: Study, name: str, path: Path) -> Path:
    """One monitor: hackable runs' curves over the null band, with the all-null threshold."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    steps, lo, hi = null_band([r.series.get(name, []) for r in study.arm("null")])
    if steps:
        ax.fill_between(steps, lo, hi, color="tab:blue", alpha=0.2, label="null runs (min–max)")
    for i, r in enumerate(study.arm("hackable")):
        pts = [(st, v if abs(v) < OFF_SCALE else float("nan")) for st, v in r.series.get(name, [])]
        if pts:
            ax.plot(
                *zip(*pts), color=f"C{(i + 1) % 10}", linewidth=1.4, label=f"hackable s{r.seed}"
            )
            if r.alarms.get(name) is not None:
                ax.axvline(r.alarms[name], color=f"C{(i + 1) % 10}", linestyle="--", linewidth=0.9)
    thr = study.full.thresholds.get(name)
    if thr is not None and abs(thr) < 1e8:
        ax.axhline(
            thr,
            color="black",
            linestyle=":",
            linewidth=1,
            label=f"threshold, all null runs ({thr:.3g})",
        )
    ax.set_title(f"monitor {name} (dashed: alarms, leave-one-seed-out thresholds)", fontsize=11)
    ax.set_xlabel("step")
    ax.set_ylabel(UNITS.get(name, name))
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _lead_between(a: int | None, b: int | None) -> str:
    """b - a in steps, signed: how much earlier a came than b."""
    return MISSING if a is None or b is None else f"{b - a:+d}"


def _step(v: int | None) -> str:
    return MISSING if v is None else str(v)


def lead_rows(study: Study) -> list[dict]:
    """Per hackable seed: the events and the probe's leads (None where an event is missing)."""
    out = []
    for r in study.arm("hackable"):
        p = r.alarms.get("probe")

        def lead(other: int | None, p=p) -> int | None:
            return None if p is None or other is None else other - p

        out.append(
            {
                "seed": r.seed,
                "behaviour_onset": r.behaviour_onset,
                "behaviour_onset_first": r.behaviour_onset_first,
                "hack_takeoff": r.hack_takeoff,
                "double_base": r.double_base,
                "alarms": dict(r.alarms),
                "probe_lead_over_onset": lead(r.behaviour_onset),
                "probe_lead_over_onset_first": lead(r.behaviour_onset_first),
                "probe_lead_over_behaviour": lead(r.alarms.get("behaviour")),
                "probe_lead_over_trace": lead(r.alarms.get("trace")),
                "probe_vs_hack_takeoff": lead(r.hack_takeoff),
            }
        )
    return out


def lead_table(study: Study) -> str:
    """Markdown: per seed, ground truth, every monitor's alarm, and the probe's leads."""
    head = [
        "seed",
        "behaviour onset",
        "onset (first crossing)",
        "hack take-off",
        "2× base",
        *(f"{m} alarm" for m in MONITORS),
        "probe lead over onset",
        "over first crossing",
        "over `behaviour`",
        "over `trace`",
        "vs hack take-off",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in lead_rows(study):
        a = row["alarms"]
        cells = [
            str(row["seed"]),
            _step(row["behaviour_onset"]),
            _step(row["behaviour_onset_first"]),
            _step(row["hack_takeoff"]),
            _step(row["double_base"]),
            *(_step(a.get(m)) for m in MONITORS),
            _lead_between(a.get("probe"), row["behaviour_onset"]),
            _lead_between(a.get("probe"), row["behaviour_onset_first"]),
            _lead_between(a.get("probe"), a.get("behaviour")),
            _lead_between(a.get("probe"), a.get("trace")),
            _lead_between(a.get("probe"), row["hack_takeoff"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def criteria(study: Study, lead: int = 5) -> list[str]:
    """The issue's bar for each probe statistic, counted: alarms in every hackable run, in at most
    one null run, and at least `lead` steps before behaviour onset in all but one seed."""
    hack, null = study.arm("hackable"), study.arm("null")
    out = []
    for m in ("probe", "probe_shift"):
        fired = sum(r.alarms.get(m) is not None for r in hack)
        false = sum(r.alarms.get(m) is not None for r in null)
        early = sum(
            r.alarms.get(m) is not None
            and r.behaviour_onset is not None
            and r.behaviour_onset - r.alarms[m] >= lead
            for r in hack
        )
        out += [
            f"- `{m}` alarms in {fired}/{len(hack)} hackable runs (needed: all), in "
            f"{false}/{len(null)} null runs (needed: at most one), and at least {lead} steps "
            f"before behaviour onset in {early}/{len(hack)} seeds (needed: all but one).",
        ]
    return out


def layer_table(study: Study, lead: int = 5) -> list[str]:
    """Markdown: the `probe` monitor read at every layer of the direction (post hoc, from the
    checkpoints), each calibrated leave-one-seed-out like the others: alarm step and lead over
    behaviour onset per seed, and how many null runs alarmed."""
    hack, null = study.arm("hackable"), study.arm("null")
    names = sorted({m for r in hack for m in r.alarms if is_layer_variant(m)}, key=layer_key)
    if not names:
        return []
    head = ["seed", "behaviour onset", *(f"{m}: alarm (lead)" for m in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in hack:
        cells = [
            f"{_step(r.alarms.get(m))} ({_lead_between(r.alarms.get(m), r.behaviour_onset)})"
            for m in names
        ]
        lines.append(f"| {r.seed} | {_step(r.behaviour_onset)} | " + " | ".join(cells) + " |")
    fired = [sum(r.alarms.get(m) is not None for r in hack) for m in names]
    false = [sum(r.alarms.get(m) is not None for r in null) for m in names]
    early = [
        sum(
            r.alarms.get(m) is not None
            and r.behaviour_onset is not None
            and r.behaviour_onset - r.alarms[m] >= lead
            for r in hack
        )
        for m in names
    ]
    lines.append(
        "| hackable runs alarmed / null runs alarmed / leads >= "
        f"{lead} | | "
        + " | ".join(
            f"{f}/{len(hack)} · {n}/{len(null)} · {e}/{len(hack)}"
            for f, n, e in zip(fired, false, early)
        )
        + " |"
    )
    return lines


def rule_table(study: Study, lead: int = 5) -> list[str]:
    """Markdown: the probe and `trace` under each alarm rule (`warning.alarm_rules`): alarm step and
    lead over behaviour onset per seed, null runs alarmed, and leads of at least `lead` steps."""
    hack = study.arm("hackable")
    onset = {r.seed: r.behaviour_onset for r in hack}
    head = ["rule", "monitor", *(f"seed {r.seed}: alarm (lead)" for r in hack)]
    head += ["null runs alarmed", f"leads >= {lead}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rule, by_monitor in study.rules.items():
        for m, found in by_monitor.items():
            got = found["hackable"]
            cells = [f"{_step(got.get(s))} ({_lead_between(got.get(s), onset[s])})" for s in onset]
            false = sum(a is not None for a in found["null"].values())
            early = sum(
                got.get(s) is not None and onset[s] is not None and onset[s] - got[s] >= lead
                for s in onset
            )
            tail = [f"{false}/{len(found['null'])}", f"{early}/{len(onset)}"]
            lines.append(f"| {rule} | `{m}` | " + " | ".join([*cells, *tail]) + " |")
    return lines


def write_plots(study: Study, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    nulls = {r.seed: r for r in study.arm("null")}
    paths = [
        plot_timeline(r, nulls.get(r.seed), out / f"timeline_seed{r.seed}.png")
        for r in study.arm("hackable")
    ]
    paths += [plot_monitor(study, m, out / f"monitor_{m}.png") for m in MONITORS]
    layers = sorted({m for r in study.runs for m in r.series if is_layer_variant(m)}, key=layer_key)
    paths += [plot_monitor(study, m, out / f"monitor_{m}.png") for m in layers]
    return paths
