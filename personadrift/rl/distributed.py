"""Which process does what when a run is launched on several processes (accelerate, DDP, DeepSpeed).

    accelerate launch --config_file personadrift/configs/accelerate/zero2.yaml -m personadrift train CONFIG

Under a launcher every process runs `train()`. The main process (global rank 0) alone creates the
run directory (the others receive its path), builds the organism first (the others then load it
from the cache), extracts the persona direction (the others receive it), moves files on a rollback,
writes config.yaml, metrics.jsonl, samples and events, and takes the probe readings and evals: a
no-grad forward on its own full copy of the weights while the other ranks wait at the next
collective. Its stop/save decisions and alarm are sent to every rank at each step
(`share_decisions`). Each step's rollouts are gathered from all ranks (TRL gathers its logged
completions; `gather_rows` gathers the samples files). Every process installs the steering hooks
and trains; checkpoints and resume are TRL/accelerate's own (DeepSpeed saves its shards). `close()`
ends the process group once every rank is done.

ZeRO-3 shards the weights, so that forward on rank 0 alone would hang the run: probes, evals and
steering are refused there (`check_zero3`); ZeRO-2 and DDP keep full weights on every rank.
A single process (no launcher) skips all of this: no process group is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from personadrift.config import Config, ConfigError

T = TypeVar("T")

_SIZE_VARS = ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"]


def launched() -> bool:
    """True when a launcher (torchrun, accelerate, deepspeed, mpirun) started several processes."""
    from accelerate.utils import get_int_from_env

    return get_int_from_env(_SIZE_VARS, 1) > 1


def _state():
    import torch
    from accelerate import PartialState

    # joins (or creates) the launcher's process group; without a GPU, gloo (as GRPOConfig does)
    return PartialState(cpu=not torch.cuda.is_available())


def is_main() -> bool:
    return not launched() or _state().is_main_process


def on_main(make: Callable[[], T]) -> T:
    """`make()` on the main process only; every process returns its result (picklable).

    An exception on the main process is raised on every process, so none waits for ever."""
    if not launched():
        return make()
    from accelerate.utils import broadcast_object_list

    box: list = [None]
    if is_main():
        try:
            box[0] = (True, make())
        except Exception as e:  # sent to the other ranks, then raised here too
            box[0] = (False, e)
    broadcast_object_list(box, from_process=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


@contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first (e.g. builds a cache); the others then run it."""
    if not launched():
        yield
        return
    with _state().main_process_first():
        yield


def gather_rows(rows: list) -> list:
    """Every rank's rows, concatenated in rank order, on every rank (a collective: all ranks call it)."""
    if not launched():
        return rows
    from accelerate.utils import gather_object

    return gather_object(rows)


def zero_stage(args) -> int:
    """DeepSpeed ZeRO stage of a TrainingArguments (0 without DeepSpeed)."""
    plugin = getattr(args, "deepspeed_plugin", None)
    return int(plugin.zero_stage) if plugin is not None else 0


def check_zero3(cfg: Config, args) -> None:
    """Probes, evals and steering read the full weights on one rank: not possible under ZeRO-3."""
    if zero_stage(args) != 3:
        return
    uses = [
        name
        for name, on in (
            ("probes.enabled=true", cfg.probes.enabled),
            (f"run_evals.every={cfg.run_evals.every}", cfg.run_evals.every >= 0),
            (f"steer.mode={cfg.steer.mode}", cfg.steer.mode != "off"),
        )
        if on
    ]
    if uses:
        raise ConfigError(
            f"DeepSpeed ZeRO-3 shards the weights, so the main process cannot run the probe, eval "
            f"or steering forward alone ({', '.join(uses)}). Use personadrift/configs/accelerate/zero2.yaml, or "
            f"turn them off: probes.enabled=false run_evals.every=-1 steer.mode=off"
        )


def share_decisions(control, alarm: T) -> T:
    """Rank 0's decisions at a step reach every rank: stop, save, and the alarm.

    The alarm reads metrics that only the main process has, so it decides there; a rank that
    kept training (or skipped a save) while the others stopped would hang the run. Every rank
    calls this at every step (a collective); a single process returns at once."""
    if not launched():
        return alarm
    from accelerate.utils import broadcast_object_list

    box = [(control.should_training_stop, control.should_save, alarm)]
    broadcast_object_list(box, from_process=0)
    control.should_training_stop, control.should_save, alarm = box[0]
    return alarm


def close() -> None:
    """Wait for every rank, then tear the process group down.

    A rank that exits while gloo's threads are still alive can abort ("terminate called without
    an active exception") and fail the launch after a finished run."""
    if not launched():
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        _state().wait_for_everyone()
        dist.destroy_process_group()
