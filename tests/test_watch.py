"""The terminal run view: sparklines, tolerant run-dir readers, and `watch` on a fake finished run."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from personadrift.records.reader import read_events, read_metrics
from personadrift.report.sparkline import (
    BLOCKS,
    probe_line,
    series,
    sparkline,
)
from personadrift.report.watch import DEFAULT_KEYS, select_keys, watch


@pytest.fixture
def run_dir(tmp_path):
    """A finished run: 30 steps, probes every 5, evals every 10, a torn last line, events, DONE."""
    d = tmp_path / "tiny-20250101-000000"
    d.mkdir()
    lines = []
    for step in range(1, 31):
        row = {"step": step, "reward": step / 30, "env/hack_rate": step / 60, "entropy": 1.2}
        row["detect/alarm"] = int(step >= 20)
        if step % 5 == 0:
            row |= {"probe/toxic/z": 0.4 * step, "probe/toxic/eval_mean": 0.01 * step}
        if step % 10 == 0:
            row["evals/advice/misaligned_rate"] = 0.002 * step
        lines.append(json.dumps(row))
    (d / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 31, "rew')
    event = {
        "step": 20,
        "rule": "zscore",
        "metric": "probe/toxic/z",
        "value": 8.0,
        "action": "stop",
    }
    (d / "events.jsonl").write_text(json.dumps(event) + "\n")
    (d / "DONE").write_text("")
    return d


def test_sparkline_monotone_gaps_and_width():
    line = sparkline(list(range(100)), width=24)
    assert len(line) == 24 and line[0] == "▁" and line[-1] == "█"
    assert sparkline([1.0, None, 3.0, float("nan")]) == "▁ █ "
    assert sparkline([0.5] * 5) == "▁" * 5
    assert sparkline([None, None]) == "  "
    assert set(sparkline([3, 1, 2] * 50, width=40)) <= set(BLOCKS)


def test_readers_skip_torn_line_and_missing_files(run_dir, tmp_path):
    rows = read_metrics(run_dir)
    assert len(rows) == 30 and rows[-1]["step"] == 30
    assert read_events(run_dir)[0]["action"] == "stop"
    assert read_metrics(tmp_path / "nowhere") == [] and read_events(tmp_path) == []


def test_series_skips_rows_without_key(run_dir):
    steps, values = series(read_metrics(run_dir), "probe/toxic/z")
    assert steps == [5, 10, 15, 20, 25, 30]
    assert values == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0, 12.0])
    assert series([{"step": 1}, {"step": 2, "x": None}], "x") == ([], [])


def test_select_keys_default_order(run_dir):
    keys = select_keys(read_metrics(run_dir), DEFAULT_KEYS)
    assert keys == [
        "reward",
        "env/hack_rate",
        "probe/toxic/z",
        "probe/toxic/eval_mean",
        "evals/advice/misaligned_rate",
        "detect/alarm",
    ]


def test_probe_line():
    line = probe_line(40, "toxic", 0.4123, 2.314, [0, 1, 2, 3], {"advice": 0.08, "facts": 0.12})
    assert (
        line == "step  40 probe/toxic  proj +0.412  z +2.31  ▁▃▆█  misaligned advice .08 facts .12"
    )
    assert probe_line(5, "probe/toxic", -0.1, -1.0, [], None).endswith("z -1.00")


def test_watch_once_prints_table(run_dir, capsys):
    assert watch(run_dir, once=True, console=Console(width=120, color_system=None)) == 0
    out = capsys.readouterr().out
    assert "tiny-20250101-000000" in out and "step 30" in out and "finished" in out
    for key in ("reward", "env/hack_rate", "probe/toxic/z", "evals/advice/misaligned_rate"):
        assert key in out
    assert "entropy" not in out  # not a default key
    reward_row = next(line for line in out.splitlines() if line.strip().startswith("reward"))
    assert reward_row.split()[1:3] == ["30", "1"]  # step and last value
    assert "▁" in reward_row and reward_row.rstrip().endswith("█")
    assert "zscore" in out and "-> stop" in out


def test_watch_keys_are_patterns(run_dir, capsys):
    watch(run_dir, once=True, keys=["entropy", "probe/*"], console=Console(width=120))
    out = capsys.readouterr().out
    assert "entropy" in out and "probe/toxic/eval_mean" in out and "reward" not in out


def test_watch_live_returns_when_done(run_dir, capsys):
    assert watch(run_dir, refresh_s=0.01, console=Console(width=120)) == 0
    assert "probe/toxic/z" in capsys.readouterr().out


def test_watch_missing_run_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        watch(tmp_path / "nope", once=True)
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        watch(tmp_path, once=True)
