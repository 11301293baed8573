"""Train a digit classifier and write it with its model card: on freshly generated glyphs
(assets/glyph_classifier.safetensors) or on the real digits' training split (assets/digits_classifier.safetensors):

    python -m adiff.cli.classifier [--dataset glyphs|digits] [--steps N] [--seed S] [--batch-size B] [--device cpu] [--out DIR]
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import DIGITS_SIZE, digits_split, make_dataset
from ..eval.classifier import (
    ASSETS_DIR,
    HELDOUT_SEED,
    HELDOUT_SIZE,
    TRAIN_SEED_BASE,
    GlyphClassifier,
    evaluate_digits_classifier,
    evaluate_glyph_classifier,
    num_params,
    save_glyph_classifier,
)

__all__ = ["train_glyph_classifier", "train_digits_classifier", "main"]

DEFAULT_STEPS = {"glyphs": 600, "digits": 1500}

logger = logging.getLogger(__name__)


def _optimizer(model: GlyphClassifier, lr: float, num_steps: int):
    """AdamW (weight decay 1e-4) with a cosine learning-rate decay to 0 over num_steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, num_steps) / num_steps))
    )
    return opt, sched


def _update(model, opt, sched, x: torch.Tensor, y: torch.Tensor, device) -> float:
    """One cross-entropy step on a batch x [B, 1, S, S], y [B]; returns the loss."""
    loss = F.cross_entropy(model(x.to(device)), y.to(device))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def train_glyph_classifier(
    num_steps: int = 600,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
    lr: float = 3e-3,
    noise_std_max: float = 0.2,
) -> tuple[GlyphClassifier, dict]:
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
    opt, sched = _optimizer(model, lr, num_steps)
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
        x = x_chunk[j * batch_size : (j + 1) * batch_size]  # [B, 1, 16, 16]
        y = y_chunk[j * batch_size : (j + 1) * batch_size]  # [B]
        sigma = noise_std_max * torch.rand(x.shape[0], 1, 1, 1, generator=torch_gen)
        x = x + sigma * torch.randn(x.shape, generator=torch_gen)
        loss_value = _update(model, opt, sched, x, y, device)
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


def _shift(x: torch.Tensor, g: torch.Generator, max_shift: int) -> torch.Tensor:
    """Each image moved by a random whole number of pixels in -max_shift..max_shift per axis, background (-1) fills in."""
    B, _, H, W = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)  # [B, 1, H + 2m, W + 2m]
    d = torch.randint(0, 2 * max_shift + 1, (B, 2), generator=g)
    return torch.stack([pad[i, :, d[i, 0] : d[i, 0] + H, d[i, 1] : d[i, 1] + W] for i in range(B)])


def train_digits_classifier(
    num_steps: int = 1500,
    seed: int = 0,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
    lr: float = 3e-3,
    noise_std_max: float = 0.2,
    max_shift: int = 1,
) -> tuple[GlyphClassifier, dict]:
    """Train a :class:`GlyphClassifier` (image_size 8) on the training split of the real "digits" (1,438 images),
    never on the held-out split: random minibatches, each image shifted by up to ``max_shift`` pixels and given
    Gaussian noise with a per-sample std ~ U[0, noise_std_max]. AdamW with a cosine learning-rate decay.

    Returns (model in eval mode, metrics): heldout_accuracy on the 359 held-out digits, train_accuracy, and the
    settings."""
    for field, value, lo in (("num_steps", num_steps, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{field} must be an integer >= {lo}, got {value!r}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GlyphClassifier(image_size=DIGITS_SIZE).to(device)
    x_train, y_train = digits_split("train")
    opt, sched = _optimizer(model, lr, num_steps)
    start = time.perf_counter()
    model.train()
    loss_value = float("nan")
    for step in range(num_steps):
        idx = torch.randint(0, len(y_train), (batch_size,), generator=g)
        x = _shift(x_train[idx], g, max_shift) if max_shift else x_train[idx]  # [B, 1, 8, 8]
        x = x + noise_std_max * torch.rand(batch_size, 1, 1, 1, generator=g) * torch.randn(x.shape, generator=g)
        loss_value = _update(model, opt, sched, x, y_train[idx], device)
        if progress is not None and ((step + 1) % 20 == 0 or step + 1 == num_steps):
            progress(step + 1, num_steps, loss_value)
    train_seconds = time.perf_counter() - start
    model.eval()
    metrics = {
        "heldout_accuracy": evaluate_digits_classifier(model, "heldout"),
        "train_accuracy": evaluate_digits_classifier(model, "train"),
        "heldout_size": len(digits_split("heldout")[1]),
        "train_size": len(y_train),
        "train_seconds": round(train_seconds, 2),
        "num_steps": num_steps,
        "batch_size": batch_size,
        "seed": seed,
        "num_params": num_params(model),
        "final_loss": round(loss_value, 5),
    }
    logger.info("digits classifier: %s", metrics)
    return model, metrics


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m adiff.cli.classifier",
        description="Train a digit classifier and write DATASET_classifier.safetensors "
        "and its model card DATASET_classifier.json (glyphs: glyph_classifier.*).",
    )
    parser.add_argument(
        "--dataset",
        choices=("glyphs", "digits"),
        default="glyphs",
        help="glyphs (16x16, generated) or digits (8x8, real handwriting); default glyphs",
    )
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default {DEFAULT_STEPS})")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default 256 glyphs, 128 digits)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--out", default=str(ASSETS_DIR), help=f"output folder (default {ASSETS_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    steps = args.steps or DEFAULT_STEPS[args.dataset]
    digits = args.dataset == "digits"
    bs = args.batch_size or (128 if digits else 256)
    trainer = train_digits_classifier if digits else train_glyph_classifier
    model, metrics = trainer(steps, seed=args.seed, batch_size=bs, device=args.device)
    out = Path(args.out)
    stem = "digits_classifier" if digits else "glyph_classifier"
    weights = save_glyph_classifier(model, out / f"{stem}.safetensors", metrics)
    command = "python -m adiff.cli.classifier" + (" --dataset digits" if digits else "")
    if digits:
        task = "classify the real 8x8 handwritten 'digits' 0-9 (adiff.data.digits_split), input in [-1, 1]"
        data = (
            f"the {metrics['train_size']} images of the digits' training split (never the held-out split), "
            "random minibatches, shifts of up to 1 pixel, Gaussian noise std ~ U[0, 0.2]"
        )
        evaluation = {
            "heldout": "the fixed held-out split of assets/digits.safetensors",
            "heldout_size": metrics["heldout_size"],
            "heldout_accuracy": metrics["heldout_accuracy"],
            "train_accuracy": metrics["train_accuracy"],
        }
    else:
        task = "classify 16x16 'glyphs' digits 0-9 (adiff.data.make_dataset('glyphs', ...)), input in [-1, 1]"
        data = f"fresh glyphs, seeds {TRAIN_SEED_BASE} + 1000 * seed + chunk; Gaussian noise std ~ U[0, 0.2]"
        evaluation = {
            "heldout_seed": HELDOUT_SEED,
            "heldout_size": HELDOUT_SIZE,
            "heldout_accuracy": metrics["heldout_accuracy"],
            "heldout_accuracy_noise_0.1": metrics["heldout_accuracy_noisy"],
        }
    card = {
        "model": "GlyphClassifier",
        "task": task,
        "architecture": model.arch_args(),
        "num_params": metrics["num_params"],
        "training": {
            "command": f"{command} --steps {steps} --seed {args.seed} --batch-size {bs}",
            "num_steps": steps,
            "seed": args.seed,
            "batch_size": bs,
            "data": data,
            "train_seconds": metrics["train_seconds"],
            "final_loss": metrics["final_loss"],
        },
        "evaluation": evaluation,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "processor": platform.processor(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(args.device),
        },
        "weights_file": weights.name,
        "weights_bytes": weights.stat().st_size,
    }
    (out / f"{stem}.json").write_text(json.dumps(card, indent=2) + "\n")
    logger.info("wrote %s (%d bytes) and %s", weights, card["weights_bytes"], out / f"{stem}.json")


if __name__ == "__main__":
    main()
