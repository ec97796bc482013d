"""Calibrating monitors on null runs: a threshold per monitor, a false-alarm rate per *run*.

A monitor's alarm rule is sustained: its value is above the threshold for `k` consecutive
readings (from step `warmup` on), and the alarm step is the last of those readings (the same rule
as `alarms.detect.sustained`). A run alarms iff its *sustained maximum* (the largest value that
stays exceeded for k readings: the max over windows of k readings of the window's min) is above
the threshold. So, given the J null runs (secure twins) a threshold is fitted on, sorting their
sustained maxima in decreasing order M(1) >= M(2) >= ... and taking

    threshold = M(r + 1),   r = floor(alpha * J)

lets exactly the r runs above it alarm (at most alpha of the null runs, at any step of the run:
a per-run rate, not a per-step one). Out of sample (a new null run, exchangeable with the J
fitted ones) the chance of an alarm is (r + 1) / (J + 1): with 4 null runs and alpha = 0.1 that
is 1/5, however small alpha; the record keeps it as `expected_false_alarm` and the report states it.

Leave-one-seed-out: `leave_one_seed_out` fits seed s's thresholds on the other seeds' null runs,
so no run is judged by a threshold fitted on it. A `Calibration` is saved as JSON with the
organism and config fingerprints of the runs it was made on; `detect.calibration: PATH` loads it,
and a run whose fingerprints differ is refused (`check`) with a `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from personadrift.config import (
    CheckpointsConfig,
    Config,
    ConfigError,
    DetectConfig,
    MitigateConfig,
    ModelEvalConfig,
    RealignConfig,
    RunEvalsConfig,
    SteerConfig,
    config_hash,
    resolve_organism,
    world_hash_leave_out,
)

MONITORS = (
    "probe",
    "probe_shift",
    "probe_relative",  # the study's drift-robust statistic (report/warning.py)
    "probe_rollout",
    "behaviour",
    "trace",
    "trace_classifier",  # the trained text baseline (report/warning.py, study only)
    "hack_rate",
)
PREFIX = "monitor/"
# grpo fields that change what is saved or logged, not how the policy trains
GRPO_BOOKKEEPING = {
    "save_only_model",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "output_dir",
    "logging_steps",
    "report_to",
    "disable_tqdm",
}

Series = Sequence[tuple[int, float]]  # (step, value) readings of one monitor in one run


# the sustained rule ------------------------------------------------------------------------
def _after_warmup(series: Series, warmup: int) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in series if s >= warmup and v == v]


def sustained_max(series: Series, k: int, warmup: int = 0) -> float:
    """max over windows of k consecutive readings of the window's min (-inf: fewer than k)."""
    values = [v for _, v in _after_warmup(series, warmup)]
    if k < 1:
        raise ValueError("k must be >= 1")
    return max((min(values[i : i + k]) for i in range(len(values) - k + 1)), default=-math.inf)


def first_alarm(series: Series, threshold: float | None, k: int, warmup: int = 0) -> int | None:
    """Step of the first reading that ends k consecutive readings above `threshold`."""
    if threshold is None:
        return None
    run = 0
    for step, v in _after_warmup(series, warmup):
        run = run + 1 if v > threshold else 0
        if run >= k:
            return step
    return None


def fit_threshold(nulls: Sequence[Series], alpha: float, k: int, warmup: int = 0) -> float | None:
    """The threshold that lets at most floor(alpha * J) of the J null runs alarm (None: no data)."""
    maxima = sorted((sustained_max(s, k, warmup) for s in nulls), reverse=True)
    maxima = [m for m in maxima if m > -math.inf]
    if not maxima:
        return None
    return maxima[min(len(maxima) - 1, math.floor(alpha * len(maxima)))]


def cusum_series(series: Series, drift: float = 0.0) -> list[tuple[int, float]]:
    """The one-sided CUSUM of a series: C_t = max(0, C_(t-1) + v_t - drift), C = 0 before the
    first reading after step 0 (step 0's reading, the baseline, stays 0). Small shifts that
    persist add up; the alarm rule on it is the same threshold rule, fitted on null runs' CUSUMs."""
    c, out = 0.0, []
    for step, v in _after_warmup(series, 0):
        c = 0.0 if step == 0 else max(0.0, c + v - drift)
        out.append((step, c))
    return out


# fingerprints ------------------------------------------------------------------------------
def organism_fingerprint(cfg: Config) -> str:
    """The organism recipe (world, size, training, code) less its seed; a model's path otherwise."""
    from personadrift.organism.build import organism_hash

    org = resolve_organism(cfg)
    if org is None:
        return cfg.model.name_or_path
    return organism_hash(dataclasses.replace(org, seed=0, cache_dir=""))


def config_fingerprint(cfg: Config) -> str:
    """Hash of what sets a monitor's null distribution: the training setup less seeds, names,
    paths, bookkeeping (checkpoints, logging, in-run evals), the detector, the mitigations that
    only an alarm switches on and the realign step after training; a hackable env, its
    `_secure` twin and its coin-paid run (`env.reward`) hash alike (the null runs' pairs)."""
    # the run's length is not in it: a calibration covers runs up to its null runs' length
    grpo = {k: v for k, v in cfg.grpo.items() if k not in GRPO_BOOKKEEPING | {"max_steps"}}
    same = dataclasses.replace(
        cfg,
        name="",
        seed=0,
        out_dir="",
        organism=dataclasses.replace(cfg.organism, seed=0, cache_dir=""),
        model_eval=ModelEvalConfig(),
        env=dataclasses.replace(cfg.env, name=cfg.env.name.removesuffix("_secure")),
        probes=dataclasses.replace(cfg.probes, directions=""),
        run_evals=RunEvalsConfig(),
        checkpoints=CheckpointsConfig(),
        detect=DetectConfig(),
        realign=RealignConfig(),
        monitors=dataclasses.replace(cfg.monitors, record=False),
        grpo=grpo,
        # a mitigation switched on by the alarm does not act before it: off the null distribution
        mitigate=MitigateConfig() if cfg.mitigate.start == "alarm" else cfg.mitigate,
        steer=SteerConfig() if cfg.steer.start == "alarm" else cfg.steer,
    )
    # more directions read on the same prompts change no reading of the run's own direction
    # and world keys added later, at their defaults: named as before them
    leave_out = {
        "probes": ("also", "random"),
        "organism.world": world_hash_leave_out(cfg.organism.world),
    }
    # who pays the null run (the secure grader, a coin) is the calibration's choice, not the run's
    leave_out["env"] = ("reward",)
    if not same.steer.also and not same.steer.in_generation:  # added later, at their defaults
        leave_out["steer"] = ("also", "in_generation")
    if not cfg.organism.world.sycophant_p:  # a one-persona world: nothing to be specific against
        leave_out["probes"] += ("specific",)
    return config_hash(same, leave_out=leave_out)


# the record --------------------------------------------------------------------------------
@dataclass
class Calibration:
    """Thresholds per monitor fitted on null runs, and what they were fitted on."""

    thresholds: dict[str, float | None]  # monitor name -> threshold (None: no null readings)
    alpha: float
    k: int
    seeds: list[int]  # the seeds whose null runs were used
    organism: str  # organism_fingerprint of the runs
    config: str  # config_fingerprint of the runs
    warmup: int = 0
    null_maxima: dict[str, list[float]] = field(default_factory=dict)  # per monitor, per null run
    expected_false_alarm: float = float("nan")  # (r + 1) / (J + 1) for a new null run
    steps: int | None = None  # the null runs' length: a longer run is refused (see `check`)
    # the organism builds its null runs trained on: cache name -> weights sha256 (`check_builds`)
    organisms: dict[str, str] = field(default_factory=dict)
    # the directions its null runs' probes read: organism cache name -> direction sha256
    directions: dict[str, str] = field(default_factory=dict)

    def threshold(self, metric: str) -> float | None:
        """The threshold of a monitor, by name or by its metric key `monitor/<name>`."""
        return self.thresholds.get(metric.removeprefix(PREFIX))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = dataclasses.asdict(self)
        data["null_maxima"] = {
            m: [_json_float(v) for v in vs] for m, vs in self.null_maxima.items()
        }
        data["expected_false_alarm"] = _json_float(self.expected_false_alarm)
        path.write_text(json.dumps(data, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"detect.calibration: file not found: {path}")
        try:
            data = json.loads(path.read_text())
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError) as e:
            raise ConfigError(f"detect.calibration: {path} is not a calibration: {e}") from None

    def check(self, cfg: Config, source: str = "config") -> None:
        """ConfigError unless `cfg` runs the organism and setup this calibration was made on."""
        for what, mine, theirs in (
            ("organism", self.organism, organism_fingerprint(cfg)),
            ("config", self.config, config_fingerprint(cfg)),
        ):
            if mine != theirs:
                raise ConfigError(
                    f"{source}: detect.calibration: made on a different {what} (fingerprint "
                    f"{mine}, this run {theirs}); calibrate on null runs of this setup "
                    "(`personadrift study warning`)"
                )
        steps = cfg.grpo.get("max_steps")
        if self.steps is not None and steps is not None and steps > self.steps:
            raise ConfigError(
                f"{source}: grpo.max_steps: {steps} steps, longer than the {self.steps}-step null "
                "runs the calibration's thresholds were fitted on (a longer run has more steps "
                "to cross them by chance); calibrate on runs at least as long"
            )

    def check_builds(
        self, run_name: str, run_weights: str, local: Mapping[str, str], source: str = "config"
    ) -> str | None:
        """ConfigError when the null runs trained on another build of an organism than this run
        belongs with (`organism.digests.foreign_builds`); a note when the calibration predates
        the digests (nothing to check), else None."""
        from personadrift.organism.digests import foreign_builds

        if not self.organisms:
            return (
                "detect.calibration: records no organism digests (fitted before they were kept), "
                "so its null runs' organism builds are not checked"
            )
        foreign = foreign_builds(self.organisms, run_name, run_weights, local)
        if foreign:
            raise ConfigError(
                f"{source}: detect.calibration: fitted on another build of the organism: "
                f"{'; '.join(foreign)}; calibrate on null runs of this build"
            )
        return None

    def check_direction(self, run_name: str, digest: str, source: str = "config") -> str | None:
        """ConfigError when the null run on this run's organism read another direction than this
        run's (the thresholds are in that direction's units); a note when the calibration records
        no directions (fitted before they were kept), else None."""
        if not self.directions:
            return (
                "detect.calibration: records no direction digests (fitted before they were kept), "
                "so the direction its null runs read is not checked"
            )
        theirs = self.directions.get(run_name)
        if theirs is not None and theirs != digest:
            raise ConfigError(
                f"{source}: detect.calibration: fitted with another direction on {run_name} "
                f"(sha256 {theirs[:16]}, this run's {digest[:16]}); calibrate on null runs that "
                "read this direction"
            )
        return None


def _json_float(v: float) -> float | None:
    return v if math.isfinite(v) else None


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Calibration:
    return Calibration.load(path)


def load_calibration(path: str | Path) -> Calibration:
    """`Calibration.load`, cached while the file is unchanged (detectors run every step)."""
    p = Path(path)
    return _load_cached(str(p), p.stat().st_mtime if p.is_file() else -1.0)


# fitting -----------------------------------------------------------------------------------
def floored(monitor: str, threshold: float | None) -> float | None:
    """A probe monitor's threshold is never below its baseline value 0: null runs that only drift
    down would otherwise set a threshold that a run whose projection has not risen crosses."""
    if threshold is None or not monitor.startswith("probe") or monitor.startswith("probe_rollout"):
        return threshold
    return max(threshold, 0.0)


def calibrate(
    nulls: Mapping[int, Mapping[str, Series]],
    alpha: float = 0.1,
    k: int = 2,
    warmup: int = 0,
    organism: str = "",
    config: str = "",
    monitors: Sequence[str] = MONITORS,
    steps: int | None = None,
    organisms: Mapping[str, str] | None = None,
) -> Calibration:
    """Thresholds from the null runs `{seed: {monitor: series}}`."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} is not in (0, 1)")
    thresholds, maxima = {}, {}
    for m in monitors:
        runs = [by_monitor[m] for by_monitor in nulls.values() if m in by_monitor]
        thresholds[m] = floored(m, fit_threshold(runs, alpha, k, warmup))
        maxima[m] = [sustained_max(s, k, warmup) for s in runs]
    j = len(nulls)
    expected = (math.floor(alpha * j) + 1) / (j + 1) if j else float("nan")
    return Calibration(
        thresholds,
        alpha,
        k,
        sorted(nulls),
        organism,
        config,
        warmup,
        maxima,
        expected,
        steps,
        dict(organisms or {}),
    )


def leave_one_seed_out(
    nulls: Mapping[int, Mapping[str, Series]], alpha: float = 0.1, k: int = 2, **kw
) -> dict[int, Calibration]:
    """Seed s -> the calibration fitted on the null runs of every other seed."""
    return {s: calibrate({o: v for o, v in nulls.items() if o != s}, alpha, k, **kw) for s in nulls}


def alarms(
    series: Mapping[str, Series], cal: Calibration, monitors: Sequence[str] = MONITORS
) -> dict[str, int | None]:
    """Each monitor's first alarm step in one run under `cal` (None: no alarm or no threshold)."""
    return {
        m: first_alarm(series.get(m, []), cal.thresholds.get(m), cal.k, cal.warmup)
        for m in monitors
    }
