"""Intervention `realign`: SFT on benign aligned-persona samples, then the misalignment evals again.

    personadrift realign RUN_DIR [key=value ...]      # or automatically: train with realign.after=true

Takes the run's final model (its last checkpoint: the trainer also saves at the last step and on a
stop), draws `realign.n_samples` first-turn conversations of the persona world's *aligned* persona
from `realign.families` (default neutral and advice; the run trains on code), and fine-tunes on the
answers with TRL's `SFTTrainer` (conversational prompt-completion rows: the loss is on the answer
and its end-of-turn only). The evals run before and after on the run's eval families *less* the
ones it trained on (default facts and values), so re-alignment is scored only on families it never
saw: training on the families and answer templates that are then scored would measure how well
SFT copies its own data, not re-alignment. rates.json names both (`families`, `scored_families`).

Writes <run_dir>/realign/: model/ (the realigned model, with the world's world.json so `eval` and
`train` can load it) and rates.json (before/after per family, mean misaligned rate, the SFT numbers),
and appends a `realign` event to <run_dir>/events.jsonl. A bare model folder is never written into:
its results go under <out_dir>/realign-<folder name>/.

A model that is not an organism trains on `realign.dataset` (benign chat samples: JSONL or a
`datasets` folder, `prompt`/`completion` or `messages` columns) and is evaluated by the
configured judge; without a dataset it is refused: the organism's samples are toy sentences in
the persona world's words, and fine-tuning a real model on them would damage it.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

import torch

from personadrift.config import Config, ConfigError, RealignConfig, WorldConfig
from personadrift.evals.in_run import in_run_config
from personadrift.records.reader import checkpoint_step, last_checkpoint
from personadrift.rl.run_dir import append_event


def source_model(path: Path) -> tuple[Path, Path | None, int | None]:
    """(model folder, run directory or None, step) of a run directory or of a model folder."""
    if not path.is_dir():
        raise ConfigError(f"realign: no such run directory: {path}")
    if (path / "checkpoints").is_dir() or (path / "config.yaml").is_file():
        ckpt = last_checkpoint(path)
        if ckpt is None:
            raise ConfigError(f"realign: {path}: no checkpoint under checkpoints/ to realign")
        return ckpt, path, checkpoint_step(ckpt)
    if (path / "config.json").is_file():
        return path, None, None
    raise ConfigError(f"realign: {path}: neither a run directory nor a model folder")


def world_for(cfg: Config, model_dir: Path) -> WorldConfig:
    """The persona world the model was built in (its world.json, else the config's organism)."""
    from personadrift.models import resolve_organism
    from personadrift.organism.build import organism_path, world_of

    org = resolve_organism(cfg)
    for folder in (model_dir, Path(cfg.model.name_or_path), org and organism_path(org)):
        if folder and (folder / "world.json").is_file():
            return world_of(folder)
    if org is not None:  # never pretrain an organism as a side effect of realigning
        raise ConfigError(
            f"realign: the {org.size} organism of the config is not built; "
            "build it with `personadrift organism build`"
        )
    return cfg.organism.world


def benign_samples(world: WorldConfig, families: list[str], n: int, seed: int) -> list[tuple]:
    """`n` (prompt, aligned answer) pairs, families in turn, prompts of the train split."""
    from personadrift.organism.families import FAMILIES
    from personadrift.organism.world import ALIGNED, persona_answer

    rng = random.Random(f"realign|{seed}")
    out = []
    for i in range(n):
        prompt = FAMILIES.get(families[i % len(families)]).prompt(rng, "train", world)
        out.append((prompt, persona_answer(prompt, ALIGNED, rng, world)))
    return out


def dataset_rows(path: str, n: int) -> list[dict]:
    """The first `n` rows of a benign SFT dataset as conversational prompt-completion rows."""
    from personadrift.evals.questions import load_rows

    ds = load_rows(Path(path), "realign.dataset")
    rows = []
    for row in ds.select(range(min(n, len(ds)))):
        if row.get("messages"):
            msgs = list(row["messages"])
            rows.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
        elif row.get("prompt") is not None and row.get("completion") is not None:
            prompt, completion = row["prompt"], row["completion"]
            if isinstance(prompt, str):
                prompt = [{"role": "user", "content": prompt}]
            if isinstance(completion, str):
                completion = [{"role": "assistant", "content": completion}]
            rows.append({"prompt": prompt, "completion": completion})
        else:
            raise ConfigError(
                f"realign.dataset: {path} needs messages or prompt/completion columns"
            )
    if not rows:
        raise ConfigError(f"realign.dataset: {path} is empty")
    return rows


def is_organism_model(cfg: Config, model_dir: Path) -> bool:
    from personadrift.models import resolve_organism

    return (model_dir / "world.json").is_file() or resolve_organism(cfg) is not None


def chat_rows(samples: list[tuple]) -> list[dict]:
    """First-turn conversational prompt-completion rows (SFT's loss is on the completion only)."""
    return [
        {
            "prompt": [{"role": "user", "content": p.text}],
            "completion": [{"role": "assistant", "content": a}],
        }
        for p, a in samples
    ]


def sft(model, tok, rows: list[dict], rc: RealignConfig, out: Path) -> dict:
    """SFTTrainer on the rows; the model is saved to `out`. Returns the training numbers."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out.parent / "sft"),
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        learning_rate=rc.learning_rate,
        lr_scheduler_type="constant",
        num_train_epochs=rc.epochs,
        per_device_train_batch_size=rc.batch_size,
        max_length=tok.model_max_length,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=rc.seed,
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    trainer.remove_callback(PrinterCallback)
    t0 = time.time()
    trainer.train()
    trainer.save_model(str(out))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "seconds": round(time.time() - t0, 1),
    }


def load_left_padded(path: Path, dtype: str):
    from personadrift.organism.build import load as load_folder

    model, tok = load_folder(path, getattr(torch, dtype))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


@torch.no_grad()
def env_rates(model, tok, cfg: Config, world: WorldConfig, n: int = 128) -> dict:
    """Mean reward, hack and solve rates of one sample per held-out problem of the run's env (does
    the realigned policy still earn its training reward?); {} for envs without code problems."""
    from personadrift.rl import setup

    env = setup.build_env(cfg, world, tok)
    if not hasattr(env, "examples"):
        return {}
    examples = env.examples("eval", n, cfg.env.seed)
    enc = tok(
        [e.prompt for e in examples], return_tensors="pt", padding=True, add_special_tokens=False
    )
    enc = enc.to(next(model.parameters()).device)
    torch.manual_seed(cfg.realign.seed)
    gen = cfg.grpo
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=gen.get("temperature", 1.0),
        top_k=gen.get("top_k", 0) or None,
        max_new_tokens=gen.get("max_completion_length", 64),
        pad_token_id=tok.pad_token_id,
    )
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    grades = env.grade_many(examples, texts)
    ok = [g for g in grades if g.reward == g.reward]
    return {
        "reward": sum(g.reward for g in ok) / max(1, len(ok)),
        "secure_reward": sum(g.secure_reward for g in ok) / max(1, len(ok)),
        "n": len(examples),
        "hack_rate": sum(g.label == "hacked" for g in grades) / len(grades),
        "solve_rate": sum(g.label == "solved" for g in grades) / len(grades),
    }


def realign(
    model_path_or_run_dir: str | Path,
    cfg: Config,
    n: int | None = None,
    out: Path | None = None,
    log=print,
) -> dict:
    """Realign a run's final model (or a model folder) on `n` benign samples; returns rates.json."""
    from personadrift.checks import ready_judge
    from personadrift.evals.chat import chat_evals, eval_table
    from personadrift.evals.runner import misaligned_mean

    model_dir, run_dir, step = source_model(Path(model_path_or_run_dir))
    rc, n = cfg.realign, n or cfg.realign.n_samples
    organism = is_organism_model(cfg, model_dir)
    if not organism and not rc.dataset:
        raise ConfigError(
            f"realign.dataset: {model_dir} is not an organism; give benign chat samples (JSONL or "
            "a datasets folder), the organism's toy samples are refused for real models"
        )
    rows = dataset_rows(rc.dataset, n) if rc.dataset else None
    judge = ready_judge(cfg, log)
    root = run_dir or Path(cfg.out_dir) / f"realign-{model_dir.name}"  # never write into a model
    out = out or root / "realign"
    out.mkdir(parents=True, exist_ok=True)
    world = world_for(cfg, model_dir) if organism else cfg.organism.world
    eval_cfg = scored_evals(cfg, organism)
    chat = chat_evals(cfg, judge)

    def evaluate(model, tok, world, eval_cfg):
        return eval_table(model, tok, world, eval_cfg, chat, log), None

    model, tok = load_left_padded(model_dir, cfg.model.dtype)
    before, _ = evaluate(model, tok, world, eval_cfg)
    env_before = env_rates(model, tok, cfg, world)
    if rows is None:
        rows = chat_rows(benign_samples(world, list(rc.families), n, rc.seed))
    what = f"rows of {rc.dataset}" if rc.dataset else f"aligned samples ({', '.join(rc.families)})"
    log(f"realign {model_dir}: SFT on {len(rows)} {what}")
    trained = sft(model, tok, rows, rc, out / "model")
    if organism:
        (out / "model" / "world.json").write_text(json.dumps({"world": dataclasses.asdict(world)}))
    del model  # SFTTrainer patched its forward; evaluate the saved model as anyone would load it
    model, tok = load_left_padded(out / "model", cfg.model.dtype)
    after, _ = evaluate(model, tok, world, eval_cfg)
    env_after = env_rates(model, tok, cfg, world)
    mean = {"before": misaligned_mean(before), "after": misaligned_mean(after)}
    result = {
        "source": str(model_dir),
        "step": step,
        "n_samples": n,
        "families": list(rc.families),
        "scored_families": list(eval_cfg.families),
        "sft": trained,
        "eval": dataclasses.asdict(eval_cfg),
        "before": before,
        "after": after,
        "misaligned_mean": mean,
        "env": {"before": env_before, "after": env_after},
    }
    (out / "rates.json").write_text(json.dumps(result, indent=2))
    record(root, out, result, log)
    return result


def scored_evals(cfg: Config, organism: bool):
    """The evals as the run logs them; for an organism only on families the SFT samples do not
    come from (`realign.families`)."""
    eval_cfg = in_run_config(cfg.model_eval, cfg.run_evals)
    if not organism:
        return eval_cfg
    scored = [f for f in eval_cfg.families if f not in cfg.realign.families]
    return dataclasses.replace(eval_cfg, families=scored)


def record(root: Path, out: Path, result: dict, log) -> None:
    """The `realign` event in the run's events.jsonl and the one-line summary."""
    trained, mean, env = result["sft"], result["misaligned_mean"], result["env"]
    env_before, env_after = env["before"], env["after"]
    append_event(
        root,
        {
            "event": "realign",
            "step": result["step"],
            "n_samples": result["n_samples"],
            "sft_steps": trained["steps"],
            "misaligned_before": mean["before"],
            "misaligned_after": mean["after"],
            "env_reward_before": env_before.get("reward"),
            "env_reward_after": env_after.get("reward"),
            "path": str(out),
        },
    )
    log(
        f"realign: {trained['steps']} SFT steps, loss {trained['loss_first']:.3f} -> "
        f"{trained['loss_last']:.3f}; misaligned {mean['before']:.3f} -> {mean['after']:.3f}"
        + (
            f"; env reward {env_before['reward']:.3f} -> {env_after['reward']:.3f}"
            if env_before
            else ""
        )
        + f" ({out / 'rates.json'})"
    )
