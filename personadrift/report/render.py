"""The report of one or more runs: summaries + plots -> `report.md` and `report.html` in one folder.

    personadrift report RUN_DIR [RUN_DIR ...] [--out DIR]     # default DIR: ./report

`build_report` reads every run first (a missing run dir fails before anything is written), then
writes the PNGs (see `plots`), `report.md` (images linked relatively) and `report.html`
(self-contained: the same tables, images embedded as base64). Missing numbers show as "—".
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path

from personadrift.report.plots import plot_overlays, plot_run
from personadrift.report.summary import (
    EM_FACTOR,
    FINAL_REWARD_STEPS,
    HACK_ONSET,
    Run,
    load_run,
    order_families,
    summarize,
)

MISSING = "—"
DEFINITIONS = [
    "misaligned rate: held-out first-turn answers judged misaligned; *mean* is over "
    "advice/facts/values. *base* is the step-0 reading (before training), *final* the last "
    "reading, *peak* the highest (its step in brackets).",
    f"hack onset: first step with `env/hack_rate` > {HACK_ONSET} (secure-grader labels of the "
    "step's rollouts).",
    f"EM step: first step after 0 whose mean misaligned rate exceeds {EM_FACTOR:g}× its base.",
    "alarm: first detector alarm (`events.jsonl` or `detect/alarm`). EM step − alarm: positive "
    "means the alarm came first; none for a run that rolled back (its later evals read another "
    "policy).",
    "behaviour onset: the study's rules on the run's own evals (at their resolution, each reading "
    "sampled with its own seed): the first reading significantly above step 0 (one-sided "
    "two-proportion test, p < 0.01) at it and at every later reading; in brackets the first "
    "reading significant at p < 0.01 / (readings after 0) (Bonferroni). lead: onset − alarm, "
    "under both rules (positive: the alarm came first); none for a run that rolled back.",
    "with its hook: the run's evals read the policy through its inference-steering hook; what its "
    "weights alone give (the same evals, no hook) is next to it: a lab ships weights.",
    f"final reward: mean `reward` over the last {FINAL_REWARD_STEPS} logged steps. A realigned run's final misaligned rate is the realigned model's (SFT on benign samples after training).",
]


def _rate(v: float | None) -> str:
    return MISSING if v is None else f"{v:.3f}"


def _int(v: int | None) -> str:
    return MISSING if v is None else str(v)


def _lead(v: int | None) -> str:
    return MISSING if v is None else f"{v:+d}"


def summary_table(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table: one row per run."""
    header = [
        "run",
        "steps",
        "misaligned base",
        "misaligned final",
        "misaligned peak (step)",
        "hack onset",
        "EM step",
        "alarm",
        "EM step − alarm",
        "behaviour onset (first crossing)",
        "lead (first crossing)",
        "final reward",
    ]
    rows = []
    for s in summaries:
        peak = _rate(s["peak_misaligned"])
        if s["peak_misaligned_step"] is not None:
            peak += f" ({s['peak_misaligned_step']})"
        steps = _int(s["last_step"]) + ("" if s["finished"] else " (running)")
        final = _rate(s["final_misaligned"])
        if s.get("realigned"):
            final += f" (realigned; {_rate(s['final_misaligned_before_realign'])} before)"
        if s.get("hooked"):
            final += f" (with its hook; weights alone {_rate(s['final_misaligned_weights'])})"
        rows.append(
            [
                s["name"],
                steps,
                _rate(s["base_misaligned"]),
                final,
                peak,
                _int(s["hack_onset_step"]),
                _int(s["em_step"]),
                _int(s["alarm_step"]),
                _lead(s["em_step_minus_alarm"]),
                f"{_int(s['behaviour_onset'])} ({_int(s['behaviour_onset_first'])})",
                f"{_lead(s['lead_over_onset'])} ({_lead(s['lead_over_onset_first'])})",
                _rate(s["final_reward"]),
            ]
        )
    return header, rows


def family_table(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-family table: base, final, peak per family, one row per run."""
    fams = order_families({f for s in summaries for f in s["families"]})
    header = ["run"] + [f"{f} {what}" for f in fams for what in ("base", "final", "peak")]
    rows = []
    for s in summaries:
        row = [s["name"]]
        for f in fams:
            row += [
                _rate(s[f"{what}_misaligned_by_family"].get(f))
                for what in ("base", "final", "peak")
            ]
        rows.append(row)
    return header, rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"
    return "\n".join([line(header), align, *map(line, rows)])


def _event_text(e: dict) -> str:
    parts = [f"{k} {_short(v)}" for k, v in e.items() if k not in ("event", "step")]
    return f"step {e.get('step', '?')}: {e.get('event', 'event')}" + (
        " — " + ", ".join(parts) if parts else ""
    )


def _short(value):
    """A float to 4 significant digits (`0.04376`, not `0.04376112939310784`), lists item-wise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(_short(v)) for v in value) + "]"
    return value


def to_markdown(
    runs: list[Run], summaries: list[dict], overlays: list[Path], per_run: list[Path | None]
) -> str:
    out = ["# personadrift report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    out += [f"- `{s['name']}`: {s['run_dir']}" for s in summaries]
    out += ["", "## Summary", "", md_table(*summary_table(summaries)), ""]
    out += ["## Misaligned rate per family", "", md_table(*family_table(summaries)), ""]
    out += [f"- {d}" for d in DEFINITIONS] + [""]
    if any(run.events for run in runs):
        out += ["## Events", ""]
        for run in runs:
            out += [f"- `{run.name}` {_event_text(e)}" for e in run.events]
        out.append("")
    if overlays:
        out += ["## All runs", ""] + [f"![{p.stem}]({p.name})\n" for p in overlays]
    out += ["## Per run", ""]
    for run, png in zip(runs, per_run):
        out += [
            f"### {run.name}",
            "",
            f"![{run.name}]({png.name})" if png else "no curves logged",
            "",
        ]
    return "\n".join(out)


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.35em 0.7em; }
th { background: #f3f4f6; text-align: center; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-family: ui-monospace, Menlo, monospace; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.note { color: #555; font-size: 0.9em; }
code { background: #f3f4f6; padding: 0 0.2em; }
"""


def _html_table(header: list[str], rows: list[list[str]], cls: str) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _inline_md(text: str) -> str:
    """The few markdown marks the definitions use (`code`, *emphasis*) as HTML."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("*")
    return "".join(f"<em>{p}</em>" if i % 2 else p for i, p in enumerate(parts))


def to_html(
    runs: list[Run], summaries: list[dict], overlays: list[Path], per_run: list[Path | None]
) -> str:
    esc = html.escape
    out = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8">',
        "<title>personadrift report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>personadrift report</h1>",
        f'<p class="note">Generated {time.strftime("%Y-%m-%d %H:%M")}.</p><ul>',
    ]
    out += [f"<li><code>{esc(s['name'])}</code>: {esc(s['run_dir'])}</li>" for s in summaries]
    out += ["</ul>", "<h2>Summary</h2>", _html_table(*summary_table(summaries), "summary")]
    out += [
        "<h2>Misaligned rate per family</h2>",
        _html_table(*family_table(summaries), "families"),
    ]
    out += ['<ul class="note">'] + [f"<li>{_inline_md(d)}</li>" for d in DEFINITIONS] + ["</ul>"]
    if any(run.events for run in runs):
        out += ["<h2>Events</h2>", "<ul>"]
        for run in runs:
            out += [
                f"<li><code>{esc(run.name)}</code> {esc(_event_text(e))}</li>" for e in run.events
            ]
        out.append("</ul>")
    if overlays:
        out += ["<h2>All runs</h2>"] + [_img(p) for p in overlays]
    out.append("<h2>Per run</h2>")
    for run, png in zip(runs, per_run):
        out += [f"<h3>{esc(run.name)}</h3>", _img(png) if png else "<p>no curves logged</p>"]
    out.append("</body></html>")
    return "\n".join(out)


def _names(paths: list[Path]) -> list[str]:
    """Run names for display and file names: the folder name, with its parent when two clash."""
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in paths]
    if len(set(names)) < len(names):
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    return names


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path = "report") -> dict:
    """Write the report of `run_dirs` into `out_dir`; return the written paths.

    Raises FileNotFoundError (naming the path) if a run dir or its metrics.jsonl is missing.
    """
    paths = [Path(d) for d in run_dirs]
    runs = [load_run(p, name) for p, name in zip(paths, _names(paths))]
    summaries = [summarize(run) for run in runs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_run = [plot_run(run, out, s) for run, s in zip(runs, summaries)]
    overlays = plot_overlays(runs, summaries, out) if len(runs) > 1 else []
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(runs, summaries, overlays, per_run), encoding="utf-8")
    page.write_text(to_html(runs, summaries, overlays, per_run), encoding="utf-8")
    return {
        "markdown": md,
        "html": page,
        "plots": [p for p in per_run if p] + overlays,
        "summaries": summaries,
    }
