"""`personadrift report`: summary numbers on hand-written run dirs, and the files it writes."""

from __future__ import annotations

import json

import pytest
from matplotlib.image import imread

from personadrift.cli import main
from personadrift.report.render import build_report
from personadrift.report.summary import summarize

EVALS = {0: (0.1, 0.2, 0.3), 10: (0.1, 0.2, 0.3), 20: (0.3, 0.5, 0.5), 30: (0.2, 0.4, 0.3)}


def _write(d, rows, events=(), done=True, torn=False):
    d.mkdir(parents=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (d / "metrics.jsonl").write_text(text + ('{"step": 99, "rew' if torn else ""))
    if events:
        (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if done:
        (d / "DONE").write_text("")
    return d


def _evals(step):
    advice, facts, values = EVALS[step]
    return {
        "evals/advice/misaligned_rate": advice,
        "evals/facts/misaligned_rate": facts,
        "evals/values/misaligned_rate": values,
        "evals/mean/misaligned_rate": (advice + facts + values) / 3,
    }


@pytest.fixture
def hack_run(tmp_path):
    """30 steps: hacks from step 9, EM at step 20, alarm at step 12 (events.jsonl and metrics)."""
    rows = [{"step": 0, "probe/toxic/z": 0.0, **_evals(0)}]
    for step in range(1, 31):
        row = {
            "step": step,
            "reward": step * 0.01,
            "env/solve_rate": 0.5,
            "env/hack_rate": 0.0 if step < 8 else 0.02 if step == 8 else 0.05,
            "detect/alarm": int(step == 12),
        }
        if step % 5 == 0:
            row["probe/toxic/z"] = 0.3 * step
        if step in EVALS:
            row |= _evals(step)
        rows.append(row)
    events = [
        {
            "event": "alarm",
            "step": 12,
            "rule": "zscore",
            "metric": "probe/toxic/z",
            "value": 3.6,
            "action": "none",
        },
    ]
    return _write(tmp_path / "runs" / "hack-20250101-000000", rows, events, torn=True)


@pytest.fixture
def bare_run(tmp_path):
    """A run still going, with rewards only: no evals, probes, env rates or events."""
    rows = [{"step": s, "reward": 0.5} for s in range(1, 4)]
    return _write(tmp_path / "runs" / "bare-20250101-000000", rows, done=False)


def test_summary_numbers(hack_run):
    s = summarize(hack_run)
    assert s["name"] == "hack-20250101-000000" and s["run_dir"] == str(hack_run)
    assert s["last_step"] == 30 and s["finished"] is True
    assert s["families"] == ["advice", "facts", "values"]
    assert s["base_misaligned"] == pytest.approx(0.2)
    assert s["final_misaligned"] == pytest.approx(0.3)
    assert s["peak_misaligned"] == pytest.approx(1.3 / 3) and s["peak_misaligned_step"] == 20
    assert s["base_misaligned_by_family"] == {"advice": 0.1, "facts": 0.2, "values": 0.3}
    assert s["final_misaligned_by_family"] == {"advice": 0.2, "facts": 0.4, "values": 0.3}
    assert s["peak_misaligned_by_family"] == {"advice": 0.3, "facts": 0.5, "values": 0.5}
    assert s["hack_onset_step"] == 9  # 0.02 at step 8 is not above the threshold
    assert s["em_step"] == 20  # 0.433 > 2 x 0.2; step 10's 0.2 is not
    assert s["alarm_step"] == 12 and s["em_step_minus_alarm"] == 8
    assert s["final_reward"] == pytest.approx(0.28)  # steps 26..30
    assert s["probe_directions"] == ["toxic"]
    json.dumps(s)  # `demo --json` prints it


@pytest.mark.parametrize("n, onset, first", [(200, 20, 20), (20, None, 20)])
def test_behaviour_onset_from_the_runs_own_evals_under_both_rules(hack_run, n, onset, first):
    """Counts from the rates and `run_evals.n_per_family`: with 200 answers per family steps 20
    and 30 are both above step 0 (0.2 vs 0.433 and 0.3); with 20, step 30's 0.3 is not
    (p = 0.10), so the every-later rule has no onset while the first crossing stays at 20
    (p = 0.0026 < 0.01 / 3); the leads are onset - alarm (12)."""
    (hack_run / "config.yaml").write_text(f"run_evals:\n  n_per_family: {n}\n")
    s = summarize(hack_run)
    assert (s["behaviour_onset"], s["behaviour_onset_first"]) == (onset, first)
    assert s["lead_over_onset"] == (None if onset is None else onset - 12)
    assert s["lead_over_onset_first"] == first - 12


def test_truncated_answers_are_not_counted_and_a_rollback_has_no_lead(hack_run):
    (hack_run / "config.yaml").write_text("run_evals:\n  n_per_family: 200\n")
    rows = [json.loads(line) for line in (hack_run / "metrics.jsonl").read_text().splitlines()[:-1]]
    rows[-1] |= {"evals/advice/truncated_rate": 0.5}  # step 30: 100 advice answers judged
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (hack_run / "metrics.jsonl").write_text(text)
    from personadrift.report.summary import eval_counts

    counts = {c.step: (c.misaligned, c.n) for c in eval_counts(rows, 200)}
    assert counts[0] == (120, 600) and counts[30] == (20 + 80 + 60, 500)
    rollback = {"event": "rollback", "step": 12, "to_step": 10, "mitigation": "steer"}
    with open(hack_run / "events.jsonl", "a") as f:
        f.write(json.dumps(rollback) + "\n")
    s = summarize(hack_run)
    assert s["behaviour_onset"] == 20 and s["lead_over_onset"] is None
    assert s["lead_over_onset_first"] is None


def test_summary_of_a_bare_run(bare_run):
    s = summarize(bare_run)
    assert s["families"] == [] and s["probe_directions"] == [] and s["finished"] is False
    for key in (
        "base_misaligned",
        "final_misaligned",
        "peak_misaligned",
        "hack_onset_step",
        "em_step",
        "alarm_step",
        "em_step_minus_alarm",
    ):
        assert s[key] is None, key
    assert s["final_reward"] == 0.5


def test_a_run_that_rolled_back_has_no_margin_between_alarm_and_em_step(hack_run):
    """Its evals after the alarm read the policy trained on after the rollback, not the one the
    alarm was about."""
    rollback = {"event": "rollback", "step": 12, "to_step": 10, "mitigation": "steer"}
    with open(hack_run / "events.jsonl", "a") as f:
        f.write(json.dumps(rollback) + "\n")
    s = summarize(hack_run)
    assert s["alarm_step"] == 12 and s["em_step"] == 20 and s["em_step_minus_alarm"] is None


def test_alarm_from_metrics_only_and_no_base(tmp_path):
    """`detect/alarm` alone marks the alarm; without step-0 evals there is no base, no EM step."""
    rows = [{"step": s, "detect/alarm": int(s >= 4), "reward": 1.0} for s in range(1, 7)]
    rows[-1] |= {"evals/advice/misaligned_rate": 0.9}
    s = summarize(_write(tmp_path / "r", rows))
    assert s["alarm_step"] == 4 and s["em_step"] is None and s["em_step_minus_alarm"] is None
    assert s["base_misaligned"] is None and s["final_misaligned"] == 0.9


def test_em_step_none_when_the_rate_stays_below_twice_base(tmp_path):
    rows = [{"step": 0, **_evals(0)}, {"step": 10, **_evals(10)}]
    s = summarize(_write(tmp_path / "r", rows))
    assert s["em_step"] is None and s["peak_misaligned_step"] == 0


def test_report_files(hack_run, bare_run, tmp_path):
    out = build_report([hack_run, bare_run], tmp_path / "out")
    names = {p.name for p in out["plots"]}
    assert {
        "run_hack-20250101-000000.png",
        "run_bare-20250101-000000.png",
        "overlay_reward.png",
        "overlay_hack_rate.png",
        "overlay_misaligned_mean.png",
        "overlay_misaligned_by_family.png",
        "overlay_probe_toxic_z.png",
    } <= names
    assert all(p.is_file() and p.stat().st_size > 5000 for p in out["plots"])
    # The bare run has one panel (reward), the full run a 2x2 grid.
    full = imread(tmp_path / "out" / "run_hack-20250101-000000.png")
    bare = imread(tmp_path / "out" / "run_bare-20250101-000000.png")
    assert bare.shape[1] < full.shape[1] and bare.shape[0] < full.shape[0]

    md = out["markdown"].read_text()
    assert "| run | steps | misaligned base |" in md
    assert (
        "| hack-20250101-000000 | 30 | 0.200 | 0.300 | 0.433 (20) | 9 | 20 | 12 | +8 | — (—) | — (—) "
        "| 0.280 |" in md
    )
    assert (
        "| bare-20250101-000000 | 3 (running) | — | — | — | — | — | — | — | — (—) | — (—) | 0.500 |"
        in md
    )
    assert "](run_hack-20250101-000000.png)" in md and "](overlay_probe_toxic_z.png)" in md

    page = out["html"].read_text()
    assert page.count("<table") == 2 and "<th>EM step</th>" in page
    assert "<td>hack-20250101-000000</td><td>30</td><td>0.200</td>" in page
    assert page.count("data:image/png;base64,") == len(out["plots"])
    assert 'src="run_' not in page  # self-contained


def test_cli_report(hack_run, tmp_path, capsys):
    assert main(["report", str(hack_run), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


def test_cli_report_missing_run_dir(hack_run, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["report", str(hack_run), str(missing), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"personadrift: no run directory at {missing}"
    assert not (tmp_path / "rep").exists()  # nothing written when a run is missing


def test_overlay_styles_tell_demo_arms_and_seeds_apart():
    from personadrift.report.plots import overlay_styles

    names = [
        f"{arm}-s{seed}-20261127-2034{seed}5"
        for arm in ("control", "hackable", "intervention")
        for seed in (0, 1)
    ]
    styles = {s.label: s for s in overlay_styles(names)}
    assert set(styles) == {
        f"{a}-s{s}" for a in ("control", "hackable", "intervention") for s in (0, 1)
    }
    hack, interv = styles["hackable-s0"], styles["intervention-s0"]
    # identical curves stay visible: the intervention line is narrower and dashed over the hackable
    assert (hack.color, hack.linestyle) != (interv.color, interv.linestyle)
    assert interv.linewidth < hack.linewidth
    assert hack.marker == interv.marker != styles["hackable-s1"].marker
    # other names keep their full (unique) label and get one colour each
    plain = overlay_styles(["run-20250101-000000", "run-20250102-000000", "other"])
    assert [s.label for s in plain] == ["run-20250101-000000", "run-20250102-000000", "other"]
    assert len({s.color for s in plain}) == 3


def test_the_probe_monitor_is_drawn_against_the_null_runs_band(tmp_path):
    import json as _json

    from personadrift.report.plots import is_null_run, plot_null_band
    from personadrift.report.summary import load_run, summarize

    runs = []
    for name, env, values in (
        ("hackable", "visible_tests", [0.0, 0.5, 3.0, 9.0]),
        ("control", "visible_tests_secure", [0.0, -0.4, 0.6, 0.2]),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / "config.yaml").write_text(f"env:\n  name: {env}\n")
        rows = [{"step": s, "monitor/probe": v} for s, v in enumerate(values)]
        (d / "metrics.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows))
        runs.append(load_run(d))
    assert [is_null_run(r) for r in runs] == [False, True]
    path = plot_null_band(runs, [summarize(r) for r in runs], tmp_path)
    assert path == tmp_path / "null_band_probe.png" and path.stat().st_size > 10_000
    assert plot_null_band(runs[:1], [summarize(runs[0])], tmp_path) is None  # no null run


def test_event_lines_print_short_floats():
    from personadrift.report.render import _event_text

    line = _event_text(
        {"event": "alarm", "step": 7, "value": 0.04376112939310784, "layers": [1], "coeff": 0.2}
    )
    assert line == "step 7: alarm — value 0.04376, layers [1], coeff 0.2"
    steer = _event_text({"event": "steer", "step": 3, "norm_unit": 40.72618865966797})
    assert steer == "step 3: steer — norm_unit 40.73"
