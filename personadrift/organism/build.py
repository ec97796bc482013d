"""Building (or loading from cache) an organism: corpus -> tokenizer -> pretraining -> checks.

`personadrift organism build CONFIG` runs `build`. The checkpoint folder, named by the size and a
hash of the organism config, holds the HF model and tokenizer (`save_pretrained`), `world.json`,
`pretrain_log.jsonl`, and what the caller's `measure` returns: `personadrift.models.build_organism`
measures `base_rates.json` (first-turn rates per family, by the evals) and `readability.json`
(per-layer AUROC of the persona directions, by the probes), so the organism imports neither. A
second build with the same config returns at once.
The folder is written under a temporary name and renamed when complete, so a crash never leaves a
half-built organism in the cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from omegaconf import OmegaConf

from personadrift.config import OrganismConfig, WorldConfig, config_hash, world_hash_leave_out
from personadrift.organism import digests
from personadrift.organism.pretrain import make_model, pretrain
from personadrift.organism.tokenizer import train_tokenizer
from personadrift.organism.world import generate, messages, render

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Built:
    path: Path
    summary: dict  # build_seconds, base_rates, best_layer, auroc, tracking_auroc, digests, ...
    cached: bool
    digest: digests.DigestCheck  # this build against the published one

    @property
    def weights_digest(self) -> str:
        return self.digest.digests["weights"]


def cache_root(cfg: OrganismConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    env = os.environ.get("PERSONADRIFT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "personadrift"


# What the organism code builds, by version: part of every organism's cache name. It changes when
# what gets built would (the corpus, the tokenizer, pretraining, the judges' labels, the held-out
# prompts), never for a refactor that builds the same organism. tests/test_world.py pins a digest of
# what the code generates for every size preset (`build_digest`) and fails, naming this constant,
# when it changes: bump it then (and re-pin the digest), so a changed world is never a stale cache
# hit. (Its value is the hash of the organism sources at the time the digest replaced that hash,
# so the organisms cached before kept their names.)
BUILD_VERSION = "ee6c4d71"


def code_fingerprint() -> str:
    return BUILD_VERSION


def build_digest(size: str, seed: int = 0) -> str:
    """A digest of what the organism code makes for a size preset: every training document as
    rendered, held-out prompts of every family, the judges' labels of held-out answers, and the
    sources of the tokenizer, text format and pretraining (what `BUILD_VERSION` stands for)."""
    import hashlib
    import random

    from personadrift.config import organism_of_size
    from personadrift.organism.heldout import eval_prompts
    from personadrift.organism.judges import judge
    from personadrift.organism.world import sample_document

    w = organism_of_size(size).world
    digest = hashlib.sha256()
    for doc in generate(w, seed, w.n_docs):
        digest.update(render(messages(doc)).encode())
    families = [f for f in w.family_weights if f != "code"]  # code answers are judged by running
    for p in eval_prompts(w, families, 50, seed):
        digest.update(repr((p.family, p.text, p.key, sorted(p.meta.items()))).encode())
    rng = random.Random("golden")
    for _ in range(300):
        for t in sample_document(rng, w, "eval").turns:
            if t.prompt.family != "code":
                digest.update(
                    judge(t.prompt, t.answer, w.markers, w.aligned_markers).label.encode()
                )
    here = Path(__file__).parent
    for name in ("pretrain.py", "tokenizer.py", "text.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def organism_hash(cfg: OrganismConfig) -> str:
    off = {"world": world_hash_leave_out(cfg.world)}
    return config_hash(dataclasses.replace(cfg, cache_dir=""), leave_out=off) + code_fingerprint()


def organism_path(cfg: OrganismConfig) -> Path:
    return cache_root(cfg) / "organisms" / f"{cfg.size}-{organism_hash(cfg)}"


def load(path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) of a saved organism or any HF causal LM folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.eval()
    return model, tok


def world_of(path: str | Path):
    """The WorldConfig an organism was built from (from its world.json)."""
    data = json.loads((Path(path) / "world.json").read_text())
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(WorldConfig), data["world"]))


# (model, tokenizer, organism config) -> ({file name: JSON value}, summary entries)
Measure = Callable[..., tuple[dict[str, object], dict[str, object]]]


def build(cfg: OrganismConfig, measure: Measure, log=print) -> Built:
    """The organism's checkpoint folder: from the cache, or built and measured by `measure`. One
    process builds a given organism at a time (a lock file beside it): another that asks for it
    meanwhile waits and then reads it from the cache."""
    path = organism_path(cfg)
    if (path / SUMMARY).is_file():
        return cached(cfg, path, log)
    lock = FileLock(lock_path(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"organism {cfg.size}: another process is building {path.name}; waiting for it")
        lock.acquire()
    try:
        if (path / SUMMARY).is_file():
            return cached(cfg, path, log)
        return build_now(cfg, path, measure, log)
    finally:
        lock.release()


def lock_path(path: Path) -> Path:
    """The lock a build of `path` holds: in a hidden folder beside the builds, never one of them."""
    folder = path.parent / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{path.name}.lock"


def cached(cfg: OrganismConfig, path: Path, log=print) -> Built:
    """A finished build from the cache, its digests checked."""
    log(f"organism {cfg.size}: cached at {path}")
    summary = json.loads((path / SUMMARY).read_text())
    if "digests" not in summary:  # built before the summary kept them: once, kept from now on
        summary["digests"] = build_digests(path, cfg)
        part = path / f"{SUMMARY}.tmp{os.getpid()}"
        part.write_text(json.dumps(summary, indent=2))
        part.replace(path / SUMMARY)
    found = digests.check_digests(path, summary["digests"])
    log(found.message())
    return Built(path, summary, True, found)


def build_now(cfg: OrganismConfig, path: Path, measure: Measure, log=print) -> Built:
    """Generate, pretrain, measure and save the organism into `path` (via a temporary folder)."""
    t0 = time.time()
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"organism {cfg.size}: generating {cfg.world.n_docs} documents (seed {cfg.seed})")
    docs = generate(cfg.world, cfg.seed, cfg.world.n_docs)
    texts = [render(messages(d)) for d in docs]
    corpus = digests.corpus_digest(texts)
    tok = train_tokenizer(texts, cfg.arch.max_len)
    token_ids = [
        ids[: cfg.arch.max_len] for ids in tok(texts, add_special_tokens=False)["input_ids"]
    ]
    log(f"organism {cfg.size}: vocab {len(tok)}, {sum(map(len, token_ids))} tokens")
    model = make_model(cfg.arch, tok, cfg.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"organism {cfg.size}: {n_params / 1e6:.2f}M parameters, {cfg.pretrain.steps} steps, "
        f"torch CPU kernels {digests.cpu_kernels()}"
    )
    with open(tmp / "pretrain_log.jsonl", "w") as f:

        def write(row):
            f.write(json.dumps(row) + "\n")
            f.flush()

        history = pretrain(model, token_ids, cfg.pretrain, tok.pad_token_id, cfg.seed, write)
    train_seconds = time.time() - t0
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    world = {
        "world": dataclasses.asdict(cfg.world),
        "seed": cfg.seed,
        "size": cfg.size,
        "hash": organism_hash(cfg),
        "organism": dataclasses.asdict(cfg),
    }
    (tmp / "world.json").write_text(json.dumps(world, indent=2))

    log(f"organism {cfg.size}: measuring base rates and persona readability")
    files, measured = measure(model, tok, cfg)
    for name, value in files.items():
        (tmp / name).write_text(json.dumps(value, indent=2))
    summary = {
        "path": str(path),
        "build_seconds": round(time.time() - t0, 1),
        "pretrain_seconds": round(train_seconds, 1),
        "params": n_params,
        "final_loss": history[-1]["loss"] if history else None,
        "cpu_kernels": digests.cpu_kernels(),
        "digests": build_digests(tmp, cfg, corpus),
        **measured,
    }
    (tmp / SUMMARY).write_text(json.dumps(summary, indent=2))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    found = digests.check_digests(path, summary["digests"])
    log(found.message())
    return Built(path, summary, False, found)


def build_digests(path: Path, cfg: OrganismConfig, corpus: str | None = None) -> dict[str, str]:
    """sha256 of the corpus, the tokenizer and the weights of a build (a cached build from before
    the summary kept them regenerates its corpus: seconds)."""
    if corpus is None:
        docs = generate(cfg.world, cfg.seed, cfg.world.n_docs)
        corpus = digests.corpus_digest(render(messages(d)) for d in docs)
    return {
        "corpus": corpus,
        "tokenizer": digests.sha256_file(path / "tokenizer.json"),
        "weights": digests.sha256_file(path / "model.safetensors"),
    }


def local_builds(organisms: Path) -> dict[str, str]:
    """Cache name -> weights sha256 of every organism in a cache folder whose summary keeps it."""
    out = {}
    for summary in sorted(Path(organisms).glob(f"*/{SUMMARY}")):
        weights = json.loads(summary.read_text()).get("digests", {}).get("weights")
        if weights:
            out[summary.parent.name] = weights
    return out
