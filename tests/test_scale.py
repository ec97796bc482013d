"""The scale path on CPU: accelerate configs, several processes (DDP, ZeRO), the GPU check's dry run.

The launched runs use torchrun through `accelerate launch --multi_gpu` (without a GPU each process
falls back to CPU + gloo): `accelerate launch --cpu` starts a single process whatever
--num_processes says.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from personadrift.config import ConfigError, load_config
from personadrift.rl.distributed import check_zero3, gather_rows, is_main, launched, on_main

from .conftest import ROOT

ACCELERATE = ROOT / "personadrift/configs/accelerate"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(launcher: list[str], args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launcher,
        "--main_process_port",
        str(free_port()),
        "-m",
        "personadrift",
        "train",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


DDP = [
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def one_run_dir(out: Path) -> Path:
    dirs = [p for p in out.iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"every rank must share one run directory: {dirs}"
    return dirs[0]


@pytest.mark.parametrize(
    "name, kind, stage",
    [
        ("single_gpu", "NO", None),
        ("zero2", "DEEPSPEED", 2),
        ("zero3", "DEEPSPEED", 3),
        ("multi_node", "DEEPSPEED", 2),
    ],
)
def test_accelerate_configs_parse(name, kind, stage):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ACCELERATE / f"{name}.yaml"))
    assert cfg.distributed_type.value == kind
    assert cfg.mixed_precision == "no"  # the run's grpo.bf16 decides, not the launcher
    if stage is not None:
        assert cfg.deepspeed_config["zero_stage"] == stage
    if name == "multi_node":
        assert cfg.num_machines == 2 and cfg.main_process_port


def test_zero3_refuses_what_reads_the_whole_model_on_rank_0():
    cfg = load_config(ROOT / "personadrift/configs/runs/tiny.yaml")
    zero3 = SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=3))
    with pytest.raises(ConfigError, match="ZeRO-3.*probes.enabled=true"):
        check_zero3(cfg, zero3)
    plain = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml", ["probes.enabled=false", "run_evals.every=-1"]
    )
    check_zero3(plain, zero3)
    check_zero3(cfg, SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=2)))
    check_zero3(cfg, SimpleNamespace(deepspeed_plugin=None))


def test_use_vllm_passes_through_and_refuses_steering(tmp_path):
    from personadrift.rl.setup import grpo_args

    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        ["grpo.use_vllm=true", "grpo.vllm_mode=colocate"],
    )
    args = grpo_args(cfg, tmp_path)
    assert args.use_vllm and args.vllm_mode == "colocate"
    with pytest.raises(ConfigError, match="vLLM generation would not be steered"):
        load_config(
            ROOT / "personadrift/configs/runs/tiny.yaml",
            ["grpo.use_vllm=true", "steer.mode=inference"],
        )


def test_gpu_and_real_configs_say_what_they_need():
    gpu = load_config(ROOT / "personadrift/configs/runs/visible_tests_base.yaml")
    assert gpu.organism.size == "base" and gpu.grpo["bf16"] and gpu.env.name == "visible_tests"
    assert 8 <= gpu.organism.arch.layers <= 12 and 384 <= gpu.organism.arch.hidden <= 768
    real = sorted((ROOT / "personadrift/configs/runs").glob("qwen*.yaml"))
    assert real
    for path in real:
        cfg = load_config(path)
        assert not cfg.model.name_or_path.startswith("organism"), path
        assert cfg.probes.source == "contrastive" and cfg.env.style == "python", path
        assert cfg.steer.mode == "off", path
        header = " ".join(line.lstrip("# ") for line in path.read_text().splitlines())
        assert "weights" in header and "never used by tests" in header.lower(), path
    assert any(load_config(p).grpo.get("use_vllm") for p in real)


def test_single_process_needs_no_process_group():
    import torch.distributed as dist

    assert not launched() and is_main()
    assert on_main(lambda: 7) == 7 and gather_rows([1, 2]) == [1, 2]
    with pytest.raises(KeyError):
        on_main(lambda: {}["x"])
    assert not dist.is_initialized()


@pytest.mark.slow
def test_ddp_two_processes_share_a_run_and_resume(tiny, cache_dir, tmp_path):
    out = launch(
        DDP,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            f"organism.cache_dir={cache_dir}",
            f"out_dir={tmp_path}",
            "grpo.max_steps=4",
        ],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = one_run_dir(tmp_path)
    metrics = {r["step"]: r for r in rows(run_dir)}
    assert sorted(metrics) == [0, 1, 2, 3, 4]
    for step in (0, 2, 4):  # read on the main process, every probes.every=2 steps
        assert (
            "probe/toxic/eval_mean" in metrics[step]
            and "evals/mean/misaligned_rate" in metrics[step]
        )
    assert "probe/toxic/rollout_mean" in metrics[4]
    assert "probe/toxic/z" not in metrics[3]
    samples = (run_dir / "samples" / "step_1.jsonl").read_text().splitlines()
    assert len(samples) == 2 * 16  # both ranks' completions, gathered
    ckpt = run_dir / "checkpoints" / "checkpoint-4"
    assert (ckpt / "rng_state_0.pth").is_file() and (ckpt / "rng_state_1.pth").is_file()
    state = json.loads((ckpt / "personadrift_state.json").read_text())
    assert [h[0] for h in state["probe"]["history"]] == [0, 2, 4]
    assert out.stdout.count("done:") == 1  # one console speaks for the run

    out = launch(
        DDP,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            "grpo.max_steps=6",
            "--resume",
            str(run_dir),
        ],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["step"] for r in rows(run_dir)] == list(range(7))
    state = json.loads(
        (run_dir / "checkpoints" / "checkpoint-6" / "personadrift_state.json").read_text()
    )
    assert [h[0] for h in state["probe"]["history"]] == [0, 2, 4, 6]  # baseline carried over


@pytest.mark.slow
@pytest.mark.parametrize("action", ["stop", "rollback"])
def test_ddp_alarm_acts_on_every_rank(tiny, cache_dir, tmp_path, action):
    """The alarm fires on rank 0 (it alone has the metrics); every rank must stop or roll back."""
    steer = (
        ["steer.mode=preventative"]
        if action == "stop"
        else ["steer.mode=ablate", "steer.start=alarm"]
    )
    out = launch(
        DDP,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            f"organism.cache_dir={cache_dir}",
            f"out_dir={tmp_path}",
            "run_evals.every=-1",
            *steer,
            "detect.rule=threshold",
            "detect.metric=probe/toxic/eval_mean",
            "detect.warmup=2",
            "detect.params={threshold: -1.0e9}",
            f"detect.action={action}",
            "grpo.max_steps=4",
        ],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = one_run_dir(tmp_path)
    events = [json.loads(x)["event"] for x in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows(run_dir)]
    if action == "stop":
        assert events == ["steer", "alarm", "stop"]  # written once, by rank 0
        assert steps == [0, 1, 2]
    else:  # back to the initial policy (no checkpoint before step 2), then on to step 4
        assert events[:3] == ["steer", "alarm", "rollback"] and events.count("rollback") == 1
        assert steps == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_zero2_on_cpu_checkpoints_and_resumes(tiny, cache_dir, tmp_path):
    pytest.importorskip("deepspeed")
    zero2 = ["--config_file", str(ACCELERATE / "zero2.yaml"), "--num_processes", "2"]
    out = launch(
        zero2,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            f"organism.cache_dir={cache_dir}",
            f"out_dir={tmp_path}",
            "run_evals.every=-1",
            "grpo.max_steps=2",
        ],
        timeout=480,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = one_run_dir(tmp_path)
    shards = list(
        (run_dir / "checkpoints" / "checkpoint-2").rglob("zero_pp_rank_*_optim_states.pt")
    )
    assert len(shards) == 2  # DeepSpeed's own checkpoint: one optimizer shard per rank
    out = launch(
        zero2,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            "grpo.max_steps=3",
            "--resume",
            str(run_dir),
        ],
        timeout=480,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["step"] for r in rows(run_dir)] == [0, 1, 2, 3]
    assert "probe/toxic/eval_mean" in rows(run_dir)[2]


@pytest.mark.slow
def test_zero3_launch_fails_with_the_reason(tiny, cache_dir, tmp_path):
    pytest.importorskip("deepspeed")
    zero3 = ["--config_file", str(ACCELERATE / "zero3.yaml"), "--num_processes", "2"]
    out = launch(
        zero3,
        [
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            f"organism.cache_dir={cache_dir}",
            f"out_dir={tmp_path}",
        ],
    )
    assert out.returncode != 0
    assert "ZeRO-3" in out.stderr and "probes.enabled=false" in out.stderr


@pytest.mark.slow
def test_gpu_check_dry_run(tiny, cache_dir, tmp_path):
    out_dir = tmp_path / "out"
    res = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks/gpu_check.sh"),
            "--dry-run",
            "--out",
            str(out_dir),
            "--work",
            str(tmp_path / "work"),
            "--cache",
            cache_dir,
        ],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in ("probes_on", "probes_off", "zero2"):
        assert (out_dir / name / "metrics.jsonl").is_file(), name
        assert (out_dir / name / "DONE").is_file(), name
    figures = json.loads((out_dir / "gpu_check.json").read_text())
    assert figures["ratio"]["wall_per_step"] > 0
    assert figures["probes_on"]["tokens_per_s"] > 0 and figures["probes_on"]["readings"] >= 1
    summary = (out_dir / "summary.txt").read_text()
    assert "ratio of wall time per step" in summary and "contiguous through the resume" in summary
    assert (out_dir / "organism" / "summary.json").is_file()
