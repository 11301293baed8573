"""Train the glyph classifier on freshly generated glyphs and write assets/glyph_classifier.safetensors and its card:

    python -m adiff.cli.classifier [--steps N] [--seed S] [--batch-size B] [--device cpu] [--out DIR]
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..data import make_dataset
from ..eval.classifier import (ASSETS_DIR, HELDOUT_SEED, HELDOUT_SIZE, TRAIN_SEED_BASE, GlyphClassifier,
                               evaluate_glyph_classifier, num_params, save_glyph_classifier)  # fmt: skip

__all__ = ["train_glyph_classifier", "main"]

logger = logging.getLogger(__name__)


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
        "num_params": num_params(model),
        "final_loss": round(loss_value, 5),
    }
    logger.info("glyph classifier: %s", metrics)
    return model, metrics


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m adiff.cli.classifier",
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
            "command": f"python -m adiff.cli.classifier --steps {args.steps} --seed {args.seed} --batch-size {args.batch_size}",
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
    main()
