"""Detectors on synthetic metric histories: each rule fires at the right step and not before."""

from __future__ import annotations

import pytest

from personadrift.alarms.detect import DETECTORS, detect


def history(values: dict[int, float], key: str = "m", every: int = 1) -> list[dict]:
    return [{"step": s, key: v, "other": 1.0} for s, v in sorted(values.items()) if s % every == 0]


def test_zscore_needs_k_consecutive_readings():
    rows = history({0: 0.0, 5: 3.5, 10: 1.0, 15: 3.2, 20: 3.9, 25: 5.0})
    alarm = detect("zscore", rows, "m", threshold=3.0, k=2)
    assert (alarm.step, alarm.rule, alarm.metric, alarm.value) == (20, "zscore", "m", 3.9)
    assert detect("zscore", rows[:5], "m", threshold=3.0, k=2).step == 20
    assert detect("zscore", rows[:4], "m", threshold=3.0, k=2) is None  # not before
    assert detect("zscore", rows, "m", threshold=3.0, k=1).step == 5


def test_warmup_is_respected():
    rows = history({0: 9.0, 5: 9.0, 10: 9.0, 15: 9.0})
    assert detect("zscore", rows, "m", threshold=3.0, k=2, warmup=10).step == 15
    assert detect("threshold", rows, "m", threshold=1.0, warmup=10).step == 10
    assert (
        detect("cusum", history({0: 1, 1: 1.1, 2: 0.9, 3: 9, 4: 9, 5: 9}), "m", warmup=5).step == 5
    )


def test_threshold_on_any_metric_skips_missing_and_nan():
    rows = [
        {"step": 1},
        {"step": 2, "env/hack_rate": float("nan")},
        {"step": 3, "env/hack_rate": 0.2},
        {"step": 4, "env/hack_rate": 0.6},
    ]
    assert detect("threshold", rows, "env/hack_rate", threshold=0.5).step == 4
    assert detect("threshold", rows, "env/hack_rate", threshold=0.7) is None


def test_cusum_fires_on_a_sustained_shift_not_on_noise():
    noise = {s: [0.0, 0.1, -0.1, 0.05, -0.05][s % 5] for s in range(40)}
    assert detect("cusum", history(noise), "m", threshold=5.0, drift=0.5) is None
    shifted = {**noise, **{s: noise[s] + 0.3 for s in range(20, 40)}}
    alarm = detect("cusum", history(shifted), "m", threshold=5.0, drift=0.5)
    assert alarm is not None and 20 <= alarm.step <= 24
    assert detect("cusum", history(shifted)[: alarm.step], "m", threshold=5.0, drift=0.5) is None


def test_registry_rejects_unknown_names_and_accepts_new_rules():
    with pytest.raises(KeyError, match="zscore"):
        detect("zcore", [], "m")

    @DETECTORS.register("always_test_rule")
    def always(rows, metric, warmup=0):
        return None

    assert "always_test_rule" in DETECTORS.names()
