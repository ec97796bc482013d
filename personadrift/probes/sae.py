"""A TopK sparse autoencoder on one layer's residual stream (Gao et al. 2024, "Scaling and
evaluating sparse autoencoders"), small enough to train on a CPU in a minute.

    z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)),   x_hat = W_dec z + b_dec

Decoder rows are kept at unit norm (re-normalised after each step), so a latent's decoder row is
a direction of the residual stream that can be compared with a persona direction (cosine) or
saved as a `Direction`. `train_sae` fits it on token activations (no labels) and reports the
fraction of variance unexplained (FVU) and the fraction of dead latents (never among the top k)
on a held-out tenth of the tokens. Saved as safetensors + json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


class TopKSAE(torch.nn.Module):
    def __init__(self, d_model: int, n_latents: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= n_latents:
            raise ValueError(f"k must be in 1..{n_latents}, got {k}")
        self.k = k
        self.W_enc = torch.nn.Parameter(torch.empty(n_latents, d_model))
        self.b_enc = torch.nn.Parameter(torch.zeros(n_latents))
        self.W_dec = torch.nn.Parameter(torch.empty(n_latents, d_model))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_model))
        torch.nn.init.kaiming_uniform_(self.W_dec)
        with torch.no_grad():
            self.normalize_decoder()
            self.W_enc.copy_(self.W_dec)  # encoder initialised as the decoder's transpose

    @property
    def n_latents(self) -> int:
        return self.W_enc.shape[0]

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., n_latents), at most k non-zero per row."""
        pre = torch.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


@dataclass
class Fit:
    sae: TopKSAE
    fvu: float  # held-out fraction of variance unexplained
    dead_frac: float  # held-out fraction of latents never active
    seconds: float
    n_tokens: int

    def stats(self) -> dict:
        return {
            "fvu": self.fvu,
            "dead_frac": self.dead_frac,
            "seconds": round(self.seconds, 1),
            "n_tokens": self.n_tokens,
            "n_latents": self.sae.n_latents,
            "k": self.sae.k,
        }


@torch.no_grad()
def fit_quality(sae: TopKSAE, x: torch.Tensor, batch: int = 4096) -> tuple[float, float]:
    """(FVU, dead fraction) of `sae` on token activations `x` (N, D)."""
    err, fired = 0.0, torch.zeros(sae.n_latents, dtype=torch.bool)
    for s in range(0, len(x), batch):
        xb = x[s : s + batch]
        x_hat, z = sae(xb)
        err += float(((x_hat - xb) ** 2).sum())
        fired |= (z > 0).any(dim=0)
    total = float(((x - x.mean(dim=0)) ** 2).sum())
    return err / total, float((~fired).float().mean())


def train_sae(
    acts: torch.Tensor,
    n_latents: int,
    k: int,
    steps: int = 2000,
    batch: int = 1024,
    lr: float = 2e-3,
    seed: int = 0,
    log=print,
) -> Fit:
    """Fit a TopK SAE on token activations `acts` (N, D); a tenth is held out for FVU / dead."""
    t0 = time.time()
    g = torch.Generator().manual_seed(seed)
    acts = acts.float()[torch.randperm(len(acts), generator=g)]
    n_test = max(1, len(acts) // 10)
    test, train = acts[:n_test], acts[n_test:]
    torch.manual_seed(seed)
    sae = TopKSAE(acts.shape[1], n_latents, k)
    with torch.no_grad():
        sae.b_dec.copy_(train.mean(dim=0))  # the geometric-median stand-in of the paper
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    var = float(((train - train.mean(dim=0)) ** 2).sum(dim=1).mean())
    for step in range(1, steps + 1):
        idx = torch.randint(len(train), (min(batch, len(train)),), generator=g)
        xb = train[idx]
        x_hat, _ = sae(xb)
        loss = ((x_hat - xb) ** 2).sum(dim=1).mean() / var
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.normalize_decoder()
        if step % 500 == 0 or step == steps:
            log(f"sae step {step}/{steps}: train FVU {loss.item():.3f} ({time.time() - t0:.0f}s)")
    fvu, dead = fit_quality(sae, test)
    return Fit(sae, fvu, dead, time.time() - t0, len(acts))


def save(fit: Fit, path: Path, meta: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in fit.sae.state_dict().items()}, path)
    path.with_suffix(".json").write_text(json.dumps({**meta, **fit.stats()}, indent=1))
    return path


def load_sae(path: Path) -> tuple[TopKSAE, dict]:
    meta = json.loads(path.with_suffix(".json").read_text())
    state = load_file(path)
    sae = TopKSAE(state["W_enc"].shape[1], state["W_enc"].shape[0], int(meta["k"]))
    sae.load_state_dict(state)
    sae.requires_grad_(False)  # loaded for reading
    return sae, meta
