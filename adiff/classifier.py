"""A small CNN that reads the 16x16 "glyphs" digits: used by the reward "classifier log-probability of digit d" and by
the benchmark that checks class-conditional samples.

The shipped weights (``assets/glyph_classifier.safetensors`` with its model card ``glyph_classifier.json``) are made by
this module's own command, which trains on freshly generated glyphs and reports held-out accuracy::

    python -m adiff.classifier [--steps N] [--seed S] [--out DIR]

Files are safetensors with the architecture and metrics as JSON in the metadata; nothing is ever unpickled.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import GLYPH_SIZE, make_dataset

__all__ = [
    "GlyphClassifier",
    "train_glyph_classifier",
    "evaluate_glyph_classifier",
    "save_glyph_classifier",
    "load_glyph_classifier",
    "DEFAULT_CLASSIFIER_PATH",
    "HELDOUT_SEED",
    "TRAIN_SEED_BASE",
]

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_CLASSIFIER_PATH = ASSETS_DIR / "glyph_classifier.safetensors"
NUM_DIGITS = 10
# Training glyphs come from make_dataset("glyphs", ..., seed=TRAIN_SEED_BASE + 1000 * seed + chunk) (chunk < 1000), so
# every seed below TRAIN_SEED_BASE is never seen in training; HELDOUT_SEED is the one the metrics report.
TRAIN_SEED_BASE = 1_000_000
HELDOUT_SEED = 777
HELDOUT_SIZE = 5000
_METADATA_KEY = "adiff_glyph_classifier"


class GlyphClassifier(nn.Module):
    """x [B, 1, 16, 16] in [-1, 1] -> logits [B, 10].

    Three 3x3 conv stages (16 -> 8 -> 4 pixels, average pooling) with SiLU, then a linear read-out. Smooth
    activations and average pooling keep the gradient with respect to the input well behaved, since rewards
    differentiate log-softmax of this network in x. About 45k parameters with the default channels.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), num_classes: int = NUM_DIGITS):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"channels must be three positive integers, got {channels!r}")
        c1, c2, c3 = channels
        self.channels = channels
        self.num_classes = int(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.AvgPool2d(2),  # 16 -> 8
            nn.Conv2d(c1, c2, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c2, 3, padding=1), nn.SiLU(),
            nn.AvgPool2d(2),  # 8 -> 4
            nn.Conv2d(c2, c3, 3, padding=1), nn.SiLU(),
        )
        self.head = nn.Linear(c3 * (GLYPH_SIZE // 4) ** 2, self.num_classes)

    def arch_args(self) -> dict:
        """The constructor's arguments, as stored with the weights."""
        return {"channels": list(self.channels), "num_classes": self.num_classes}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, GLYPH_SIZE, GLYPH_SIZE):
            raise ValueError(f"GlyphClassifier expects x of shape [B, 1, {GLYPH_SIZE}, {GLYPH_SIZE}], got {tuple(x.shape)}")
        h = self.features(x)  # [B, c3, 4, 4]
        return self.head(h.flatten(1))  # [B, num_classes]


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate_glyph_classifier(model: GlyphClassifier, n: int = HELDOUT_SIZE, seed: int = HELDOUT_SEED,
                              noise_std: float = 0.0, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on ``n`` glyphs made with ``seed`` (optionally plus Gaussian noise of ``noise_std``)."""
    x, y = make_dataset("glyphs", n, seed)
    if noise_std > 0:
        g = torch.Generator().manual_seed(seed + 1)
        x = x + noise_std * torch.randn(x.shape, generator=g)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits = model(x[i:i + batch_size].to(device))  # [b, 10]
            correct += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / n


def train_glyph_classifier(num_steps: int = 600, seed: int = 0, batch_size: int = 256, device: str | torch.device = "cpu",
                           progress: Callable[[int, int, float], None] | None = None,
                           lr: float = 3e-3, noise_std_max: float = 0.2) -> tuple[GlyphClassifier, dict]:
    """Train a :class:`GlyphClassifier` on freshly generated glyphs.

    Each step draws a batch of new glyphs (seeds TRAIN_SEED_BASE + 1000 * seed + chunk, never a held-out seed) and
    adds Gaussian noise with a per-sample std ~ U[0, noise_std_max] (robustness to slightly noisy inputs). AdamW with
    a cosine learning-rate decay. ``progress(step, num_steps, loss)`` is called every 20 steps and at the end.

    Returns (model in eval mode, metrics): metrics holds heldout_accuracy (on HELDOUT_SIZE glyphs of seed HELDOUT_SEED),
    heldout_accuracy_noisy (same glyphs plus noise std 0.1), train_seconds, num_steps, batch_size, seed, num_params,
    final_loss.
    """
    for field, value, lo in (("num_steps", num_steps, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{field} must be an integer >= {lo}, got {value!r}")
    device = torch.device(device)
    torch_gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # model init draws from the global RNG: seed it without leaking the state
        torch.manual_seed(seed)
        model = GlyphClassifier().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, num_steps) / num_steps)))
    chunk_batches = max(1, 16384 // batch_size)  # glyphs are generated a chunk (~16k) at a time
    start = time.perf_counter()
    model.train()
    loss_value = float("nan")
    x_chunk = y_chunk = None
    for step in range(num_steps):
        j = step % chunk_batches
        if j == 0:
            chunk = step // chunk_batches
            if chunk >= 1000:
                raise ValueError("num_steps too large for the training seed scheme (at most 1000 chunks)")
            x_chunk, y_chunk = make_dataset("glyphs", chunk_batches * batch_size, TRAIN_SEED_BASE + 1000 * seed + chunk)
        x = x_chunk[j * batch_size:(j + 1) * batch_size]  # [B, 1, 16, 16]
        y = y_chunk[j * batch_size:(j + 1) * batch_size]  # [B]
        sigma = noise_std_max * torch.rand(x.shape[0], 1, 1, 1, generator=torch_gen)
        x = x + sigma * torch.randn(x.shape, generator=torch_gen)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_value = loss.item()
        if progress is not None and ((step + 1) % 20 == 0 or step + 1 == num_steps):
            progress(step + 1, num_steps, loss_value)
        if (step + 1) % 200 == 0:
            logger.info("step %d/%d loss %.4f", step + 1, num_steps, loss_value)
    train_seconds = time.perf_counter() - start
    model.eval()
    metrics = {
        "heldout_accuracy": evaluate_glyph_classifier(model),
        "heldout_accuracy_noisy": evaluate_glyph_classifier(model, noise_std=0.1),
        "heldout_seed": HELDOUT_SEED,
        "heldout_size": HELDOUT_SIZE,
        "train_seconds": round(train_seconds, 2),
        "num_steps": num_steps,
        "batch_size": batch_size,
        "seed": seed,
        "num_params": _num_params(model),
        "final_loss": round(loss_value, 5),
    }
    logger.info("glyph classifier: %s", metrics)
    return model, metrics


# ---------------------------------------------------------------------------------------------- files
def save_glyph_classifier(model: GlyphClassifier, path: str | os.PathLike, metrics: dict | None = None) -> Path:
    """Write the weights as safetensors, with {"arch": ..., "metrics": ...} as JSON in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {_METADATA_KEY: json.dumps({"arch": model.arch_args(), "metrics": metrics or {}}, sort_keys=True)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=meta)
    return path


_CACHE: dict[tuple, GlyphClassifier] = {}
_CACHE_LOCK = threading.Lock()


def load_glyph_classifier(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GlyphClassifier:
    """Load a saved classifier (default: the shipped ``assets/glyph_classifier.safetensors``) in eval mode.

    The model is cached per (path, device, file mtime and size) and shared by every caller: its parameters have
    requires_grad=False (gradients still flow to the input). Treat it as read-only.
    Raises ValueError naming the path when the file is missing or is not a valid classifier file.
    """
    path = Path(DEFAULT_CLASSIFIER_PATH if path is None else path).resolve()
    device = torch.device(device)
    try:
        st = path.stat()
    except OSError as e:
        raise ValueError(f"glyph classifier file {str(path)!r} cannot be read: {e.strerror or e}") from None
    key = (str(path), str(device), st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = _load(path, device)
            for old in [k for k in _CACHE if k[:2] == key[:2]]:
                del _CACHE[old]  # the file changed: drop the stale copy
            _CACHE[key] = model
    return model


def _load(path: Path, device: torch.device) -> GlyphClassifier:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(meta[_METADATA_KEY])
        model = GlyphClassifier(**info["arch"])
        model.load_state_dict(tensors, strict=True)
    except Exception as e:  # safetensors' own error type, JSON, a missing key, mismatched shapes: all mean "bad file"
        raise ValueError(f"glyph classifier file {str(path)!r} is not a valid classifier file "
                         f"({type(e).__name__}: {e})") from None
    model.requires_grad_(False)
    return model.to(device).eval()


def _main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m adiff.classifier",
                                     description="Train the glyph classifier and write glyph_classifier.safetensors "
                                                 "and its model card glyph_classifier.json.")
    parser.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--out", default=str(ASSETS_DIR), help=f"output folder (default {ASSETS_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    model, metrics = train_glyph_classifier(args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device)
    out = Path(args.out)
    weights = save_glyph_classifier(model, out / "glyph_classifier.safetensors", metrics)
    card = {
        "model": "GlyphClassifier",
        "task": "classify 16x16 'glyphs' digits 0-9 (adiff.data.make_dataset('glyphs', ...)), input in [-1, 1]",
        "architecture": model.arch_args(),
        "num_params": metrics["num_params"],
        "training": {
            "command": f"python -m adiff.classifier --steps {args.steps} --seed {args.seed} --batch-size {args.batch_size}",
            "num_steps": args.steps, "seed": args.seed, "batch_size": args.batch_size,
            "data": f"fresh glyphs, seeds {TRAIN_SEED_BASE} + 1000 * seed + chunk; Gaussian noise std ~ U[0, 0.2]",
            "train_seconds": metrics["train_seconds"], "final_loss": metrics["final_loss"],
        },
        "evaluation": {
            "heldout_seed": HELDOUT_SEED, "heldout_size": HELDOUT_SIZE,
            "heldout_accuracy": metrics["heldout_accuracy"],
            "heldout_accuracy_noise_0.1": metrics["heldout_accuracy_noisy"],
        },
        "environment": {
            "torch": torch.__version__, "python": platform.python_version(),
            "processor": platform.processor(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": str(args.device),
        },
        "weights_file": weights.name,
        "weights_bytes": weights.stat().st_size,
    }
    (out / "glyph_classifier.json").write_text(json.dumps(card, indent=2) + "\n")
    logger.info("wrote %s (%d bytes) and %s", weights, card["weights_bytes"], out / "glyph_classifier.json")


if __name__ == "__main__":
    _main()
