"""Pretraining the organism: a LlamaForCausalLM from scratch on the persona-world corpus.

Batches are whole documents bucketed by length (no packing, so no attention crosses documents
and every document starts at position 0, like RL prompts), at most `tokens_per_step` tokens of
padded batch each. AdamW with linear warm-up and cosine decay; progress bar and loss log.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from personadrift.config import ArchConfig, PretrainConfig


def make_model(arch: ArchConfig, tok: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=arch.hidden,
        intermediate_size=arch.mlp,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.heads,
        max_position_embeddings=arch.max_len,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    return model


def length_batches(lengths: list[int], budget: int, rng: random.Random) -> list[list[int]]:
    """Groups of document indices of similar length with batch * max_len <= budget."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches, cur, cur_max = [], [], 0
    for i in order:
        new_max = max(cur_max, lengths[i])
        if cur and new_max * (len(cur) + 1) > budget:
            batches.append(cur)
            cur, new_max = [], lengths[i]
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    floor = cfg.min_lr_frac
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def collate(seqs: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (B, T), right-padded
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pretrain(
    model: LlamaForCausalLM,
    token_ids: list[list[int]],
    cfg: PretrainConfig,
    pad_id: int,
    seed: int,
    log: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Train in place; returns the loss log (one row per `log_every` steps)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    lengths = [len(t) for t in token_ids]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.train()
    history, batches, t0, tokens, running = [], [], time.time(), 0, None
    columns = [
        TextColumn("pretrain"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("pretrain", total=cfg.steps, loss="-")
        for step in range(cfg.steps):
            if not batches:
                batches = length_batches(lengths, cfg.tokens_per_step, rng)
            batch = collate([token_ids[i] for i in batches.pop()], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            tokens += int(batch["attention_mask"].sum())
            value = loss.item()
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(task, advance=1, loss=f"{running:.3f}")
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                row = {
                    "step": step + 1,
                    "loss": round(running, 4),
                    "lr": lr_at(step, cfg),
                    "tokens": tokens,
                    "seconds": round(time.time() - t0, 1),
                }
                history.append(row)
                log(row)
                bar.console.print(
                    f"pretrain step {row['step']}/{cfg.steps} loss {row['loss']:.3f} "
                    f"lr {row['lr']:.2e} {row['tokens'] / row['seconds']:.0f} tok/s"
                )
    model.eval()
    return history
