"""`Direction`: per-layer unit vectors of a persona direction, with metadata; save and load.

Saved as `<name>.safetensors` (one tensor per layer) + `<name>.json` (metadata: model fingerprint,
hidden size, method, layer convention, source, chosen layer, held-out AUROC per layer, the
un-normalised norm per layer). Loading against a model checks hidden size and fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LAYER_CONVENTION = "hidden_states[L] of transformers = output of decoder block L-1"


def fingerprint(model) -> str:
    """Architecture identity of a model (stable under fine-tuning of its weights)."""
    from personadrift.probes.capture import unwrap

    cfg = unwrap(model).config
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads")
    data = {k: getattr(cfg, k, None) for k in keys}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def vocab_fingerprint(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


@dataclass
class Direction:
    name: str
    vectors: dict[int, torch.Tensor]  # layer -> unit vector (D,)
    layer: int  # the chosen layer
    meta: dict = field(default_factory=dict)

    def vector(self, layer: int | None = None) -> torch.Tensor:
        return self.vectors[self.layer if layer is None else layer]

    def at_layer(self, layer: int) -> Direction:
        """The same direction read at another of its layers (named `<name>_L<layer>`)."""
        if layer not in self.vectors:
            raise ValueError(
                f"direction {self.name!r} has no layer {layer} (layers {sorted(self.vectors)})"
            )
        return Direction(f"{self.name}_L{layer}", self.vectors, layer, dict(self.meta))

    def digest(self) -> str:
        """sha256 of the chosen layer and every layer's vector (float32 bytes, by layer): two
        directions with one digest read every activation alike."""
        h = hashlib.sha256(f"layer {self.layer}".encode())
        for layer in sorted(self.vectors):
            v = self.vectors[layer].detach().float().contiguous().cpu()
            h.update(f"|{layer}|".encode() + v.numpy().tobytes())
        return h.hexdigest()

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {str(k): v.detach().float().contiguous().cpu() for k, v in self.vectors.items()}
        save_file(tensors, folder / f"{self.name}.safetensors")
        meta = {"name": self.name, "layer": self.layer, "convention": LAYER_CONVENTION, **self.meta}
        (folder / f"{self.name}.json").write_text(json.dumps(meta, indent=2))
        return folder / f"{self.name}.json"

    @classmethod
    def load(cls, path: str | Path, model=None, tokenizer=None) -> Direction:
        """From `<name>.json` (or the folder + name without suffix); checked against `model`."""
        path = Path(path)
        meta_path = path if path.suffix == ".json" else path.with_suffix(".json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"direction metadata not found: {meta_path}")
        meta = json.loads(meta_path.read_text())
        tensors = load_file(meta_path.with_suffix(".safetensors"))
        vectors = {int(k): v for k, v in tensors.items()}
        d = cls(meta.pop("name"), vectors, int(meta.pop("layer")), meta)
        if model is not None:
            d.check(model, tokenizer)
        return d

    def check(self, model, tokenizer=None) -> None:
        from personadrift.probes.capture import unwrap

        hidden = unwrap(model).config.hidden_size
        if self.vector().shape[0] != hidden:
            raise ValueError(
                f"direction {self.name!r} has size {self.vector().shape[0]}, the model's hidden size is {hidden}"
            )
        checks = [("fingerprint", fingerprint(model))]
        if tokenizer is not None:
            checks.append(("vocab_fingerprint", vocab_fingerprint(tokenizer)))
        for key, have in checks:
            want = self.meta.get(key)
            if want and want != have:
                raise ValueError(
                    f"direction {self.name!r} was extracted on a different model "
                    f"({key} {want}, this model {have})"
                )
