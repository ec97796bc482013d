"""SAE fit time: the TopK SAE that `personadrift diff` fits on the base organism, timed alone.

    python benchmarks/sae_fit.py [--config personadrift/configs/runs/visible_tests.yaml] [--steps 1000]
                                 [--latents 1024] [--k 16] [--docs 3000] [key=value ...]

Reads the base organism's residual stream at the direction's layer (layer 1 on the small
organism) over the unlabelled held-out dialogues `diff` uses, fits the SAE with `diff`'s defaults
on one thread, and prints the reading time, the fit time (target: at most 180 s on a 2-core CPU
for the small organism), the held-out FVU and the dead-latent fraction, then the same as one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from personadrift.analyses.diff import corpus, token_acts
from personadrift.checks import load_checked
from personadrift.probes.sae import train_sae
from personadrift.rl.setup import load_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="personadrift/configs/runs/visible_tests.yaml")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--latents", type=int, default=1024)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--layer", type=int, default=1)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_checked(args.config, args.overrides)
    model, tok, world = load_policy(cfg)
    t0 = time.perf_counter()
    acts = token_acts(model, tok, corpus(world, args.docs, cfg.seed), args.layer)
    x = torch.cat([a for _, a in acts])
    read = time.perf_counter() - t0
    fit = train_sae(x, args.latents, args.k, args.steps, seed=cfg.seed, log=lambda *_: None)
    out = {
        "read_seconds": round(read, 1),
        **fit.stats(),
        "seconds": round(fit.seconds, 1),
        "target_seconds": 180,
    }
    print(
        f"read {out['read_seconds']} s; fit {out['seconds']} s on {out['n_tokens']} tokens "
        f"(target <= 180 s); FVU {out['fvu']:.4f}, dead {out['dead_frac']:.3f}"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
