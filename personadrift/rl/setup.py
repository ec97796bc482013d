"""Building the pieces of a run from its config: policy, direction, dataset, GRPOConfig.

Each function does one thing and fails with `ConfigError` on bad input, before training starts.
"""

from __future__ import annotations

from pathlib import Path

import torch

from personadrift.alarms.actions import INOCULATING
from personadrift.config import Config, ConfigError
from personadrift.probes.direction import Direction
from personadrift.rl.distributed import check_zero3, is_main, main_first, on_main


def load_policy(cfg: Config):
    """(model, tokenizer, world or None): organisms come with their persona world."""
    from personadrift.models import build_organism, load_model, resolve_organism

    org = resolve_organism(cfg)
    if org is not None:
        with main_first():  # under a launcher the main process builds it, the others find it cached
            build_organism(org, cfg.model_eval, log=print if is_main() else lambda *_: None)
    # every rank loads at once: under ZeRO-3 the load itself is collective (weights partitioned)
    model, tok, world, _ = load_model(cfg)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok, world


def organism_build(cfg: Config, log=print):
    """The run's organism build (`Built`, built now or found in the cache), None for other
    models. A calibration fitted on another build of an organism is refused here (ConfigError),
    before the run writes anything."""
    from personadrift.alarms.calibrate import load_calibration
    from personadrift.models import build_organism, resolve_organism
    from personadrift.organism.build import local_builds

    org = resolve_organism(cfg)
    if org is None:
        return None
    with main_first():
        built = build_organism(org, cfg.model_eval, log=log if is_main() else lambda *_: None)
    if cfg.detect.calibration:
        cal = load_calibration(cfg.detect.calibration)
        local = local_builds(built.path.parent)
        note = cal.check_builds(built.path.name, built.weights_digest, local)
        if note and is_main():
            log(note)
    return built


def check_run_direction(cfg: Config, direction: Direction, organism: str, log=print) -> None:
    """A calibration whose null runs on this organism read another direction is refused
    (ConfigError); one that records no directions is said, not refused."""
    from personadrift.alarms.calibrate import load_calibration

    if not cfg.detect.calibration or not organism:
        return
    cal = load_calibration(cfg.detect.calibration)
    note = cal.check_direction(organism, direction.digest())
    if note and is_main():
        log(note)


def check_prepared_direction(cfg: Config, organism: str, log=print) -> None:
    """`probes.directions` (a direction prepared before the run) against the calibration, before
    the run writes anything; a direction extracted in the run is checked once it is."""
    if cfg.probes.directions and Path(cfg.probes.directions).is_file():
        check_run_direction(cfg, Direction.load(cfg.probes.directions), organism, log)


def is_organism(cfg: Config) -> bool:
    from personadrift.models import resolve_organism

    name = cfg.model.name_or_path
    return resolve_organism(cfg) is not None or (Path(name) / "world.json").is_file()


def build_direction(
    cfg: Config, model, tok, world, out_dir: Path, log=print, judge=None
) -> Direction:
    """The run's persona direction: loaded (and checked against the model) or extracted now.

    Under a launcher the main process extracts and saves it; the others receive it."""
    p = cfg.probes
    if p.directions:
        if not Path(p.directions).is_file():
            raise ConfigError(f"probes.directions: file not found: {p.directions}")
        return Direction.load(p.directions, model, tok)
    return on_main(lambda: _extract(cfg, model, tok, world, out_dir, log, judge))


def run_direction(
    cfg: Config, model, tok, world, run_dir: Path, resuming: bool, log=print, judge=None
) -> Direction:
    """The direction of a run: the one it saved (a resumed or rolled-back pass), or `build_direction`."""
    saved = run_dir / "directions" / f"{cfg.probes.name}.json"
    if resuming and saved.is_file():
        return Direction.load(saved, model, tok)
    return build_direction(cfg, model, tok, world, run_dir / "directions", log, judge)


def also_directions(
    cfg: Config, model, tok, direction: Direction, run_dir: Path
) -> list[Direction]:
    """The directions read next to the run's (`probes.also`, then `probes.random`), each checked
    against the model and saved with the run (directions/<name>.json)."""
    from personadrift.probes.reading import random_direction

    out = [Direction.load(path, model, tok) for path in cfg.probes.also]
    if cfg.probes.random:
        out.append(random_direction(direction, cfg.seed))
    if is_main():
        for d in out:
            d.save(run_dir / "directions")
    return out


def _extract(cfg: Config, model, tok, world, out_dir: Path, log, judge=None) -> Direction:
    from personadrift.organism.world import personas
    from personadrift.probes import extract

    p = cfg.probes
    source = p.source if p.source != "auto" else ("organism" if is_organism(cfg) else "contrastive")
    info = {}
    against = None
    if source == "organism":
        contrast = extract.organism_contrast(
            model, tok, world, p.n_docs, cfg.seed + 7, p.position, p.persona
        )
        others = [q for q in personas(world) if q != p.persona] if p.specific else []
        if others:
            contrasts = [
                extract.organism_contrast(model, tok, world, p.n_docs, cfg.seed + 7, p.position, q)
                for q in others
            ]
            against = extract.other_persona_vectors(contrasts, p.method)
            info = {"orthogonal_to": others}
    elif is_organism(cfg):  # the organism only speaks its world's words
        questions = extract.default_questions(world, p.n_docs // 3 + 1, cfg.seed + 7)
        contrast = extract.contrastive_prompts(model, tok, questions)
    else:
        from personadrift.evals.questions import load_trait

        trait = load_trait(p.trait)
        n_q = max(2, p.n_docs // len(trait["pos"]))
        contrast, info = extract.trait_contrast(
            model,
            tok,
            trait,
            n_q,
            p.position,
            p.trait_answer_tokens,
            cfg.seed + 7,
            judge,
            cfg.model.enable_thinking,
            log,
        )
        info = {"trait": trait.get("trait", p.trait), "model": cfg.model.name_or_path, **info}
    direction, aurocs = extract.to_direction(
        p.name, contrast, p.method, p.layer, model, tok, f"{source}/{p.position}", against
    )
    direction.meta.update(info)
    direction.save(out_dir)
    table = "  ".join(f"L{L}:{a:.3f}" for L, a in aurocs.items())
    specific = f", orthogonal to {'+'.join(info['orthogonal_to'])}" if against else ""
    log(
        f"direction {p.name}: {source}/{p.position} {p.method}{specific}, held-out AUROC {table}; "
        f"layer {direction.layer}"
    )
    return direction


def grpo_args(cfg: Config, run_dir: Path):
    """TRL's GRPOConfig from the `grpo:` section; the run dir decides where checkpoints go."""
    from trl import GRPOConfig

    every = cfg.checkpoints.every or cfg.probes.every
    fields = {
        "output_dir": str(run_dir / "checkpoints"),
        "save_strategy": "steps",
        "save_steps": every,
        "save_total_limit": cfg.checkpoints.keep or None,
        "use_cpu": not torch.cuda.is_available(),
        "seed": cfg.seed,
        **cfg.grpo,
    }
    if fields.get("bf16") and not torch.cuda.is_available():
        raise ConfigError("grpo.bf16: bf16 needs a GPU; on CPU keep grpo.bf16=false")
    try:
        args = GRPOConfig(**fields)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"grpo: {e}") from None
    if args.logging_steps != 1:
        raise ConfigError(
            "grpo.logging_steps: must be 1 (the run writes one metrics line per step)"
        )
    check_zero3(cfg, args)
    return args


def build_env(cfg: Config, world, tok):
    from personadrift.config import WorldConfig
    from personadrift.envs import make
    from personadrift.envs.coin import CoinReward

    e = cfg.env
    problems = {"coef_max": e.coef_max, "intercept_max": e.intercept_max, "x_max": e.x_max}
    thinking = cfg.model.enable_thinking
    env = make(
        e.name,
        world=world or WorldConfig(),
        tokenizer=tok,
        style=e.style,
        problems={k: v for k, v in problems.items() if v},
        inoculate=e.inoculate
        or (cfg.mitigate.name in INOCULATING and cfg.mitigate.start == "step0"),
        think=e.think,
        **({} if thinking is None else {"enable_thinking": thinking}),
    )
    return CoinReward(env, cfg.seed) if e.reward == "coin" else env


def probe_texts(cfg: Config, world, tok) -> list[str]:
    """Fixed held-out first-turn prompts of families the run does not train on, each once (the
    organism's `probe` set: up to `probes.n_eval_prompts` distinct prompts per family, none of
    them extracted from or asked by the evals; for another model the question set's questions of
    those families)."""
    from personadrift.envs.reasoning import chat_prompt
    from personadrift.organism.heldout import distinct_prompts

    if is_organism(cfg):
        prompts = distinct_prompts(
            world, list(cfg.probes.eval_families), cfg.probes.n_eval_prompts, cfg.seed + 11
        )
        texts = [p.text for p in prompts]
    else:  # a chat model reads the question set's families (held out: the run trains on code)
        from personadrift.evals.questions import load_questions

        qs = load_questions(cfg.run_evals.questions)
        n = cfg.probes.n_eval_prompts
        texts = [q for f in cfg.probes.eval_families for q in qs.get(f, [])[:n]]
    msgs = [[{"role": "user", "content": t}] for t in texts]
    return [chat_prompt(tok, m, cfg.model.enable_thinking) for m in msgs]


def add_callbacks(trainer, instruments, run_dir: Path) -> None:
    """The run's `Instruments`, then the reporting callbacks (TensorBoard, W&B, ...) after it.

    TRL registers the reporters at construction; they move behind the instruments so that they log
    the step's merged metrics (probes, evals, alarm). TensorBoard writes into this run's `tb/`."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    reporters = [
        trainer.pop_callback(type(cb))
        for cb in list(trainer.callback_handler.callbacks)
        if type(cb) in INTEGRATION_TO_CALLBACK.values()
    ]
    trainer.add_callback(instruments)
    for cb in reporters:
        if isinstance(cb, TensorBoardCallback) and is_main():
            cb = TensorBoardCallback(SummaryWriter(log_dir=str(run_dir / "tb")))
        trainer.add_callback(cb)
