"""Train a preset from its seed and write the checkpoint and model card that ship in assets/presets/.

    python -m adiff.train --preset moons [--device cuda] [--out DIR] [--steps N] [--seed S]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from .data import gaussian_mixture_for, make_dataset
from .metrics import mmd2, sliced_wasserstein
from .model import DiffusionModel
from .presets import PRESET_DIR, preset_spec
from .sampling import sample

__all__ = ["train_preset", "evaluate_points", "evaluate_glyphs", "machine_info"]


def machine_info(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device)}  # fmt: skip
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _progress(step: int, total: int, loss: float, t0: float, stream=sys.stderr) -> None:
    width = 30
    done = int(width * step / total)
    rate = step / max(1e-9, time.time() - t0)
    eta = (total - step) / max(rate, 1e-9)
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {step}/{total} loss {loss:.4f} {rate:.1f} it/s eta {eta:.0f}s ")
    stream.flush()


def _conditions(model: DiffusionModel, labels: torch.Tensor | None):
    return labels if model.is_conditional else None


def evaluate_points(model: DiffusionModel, dataset: str, n: int = 2000, seed: int = 0) -> dict:
    """MMD^2 / sliced Wasserstein of DDPM-1000 and DDIM-50 samples to fresh data, with the data-vs-data floor."""
    ref, ref_labels = make_dataset(dataset, n, seed=10_000 + seed)
    other, _ = make_dataset(dataset, n, seed=20_000 + seed)
    _, cond_labels = make_dataset(dataset, n, seed=30_000 + seed)  # conditional models: labels from the data
    out = {"n": n, "floor_mmd2": mmd2(other, ref), "floor_swd": sliced_wasserstein(other, ref)}
    for name, kw in (("ddpm1000", {"sampler": "ddpm"}), ("ddim50", {"sampler": "ddim", "num_steps": 50})):
        t0 = time.time()
        x, _ = model.generate(n, condition=_conditions(model, cond_labels), seed=seed, keep_every=10_000, **kw)
        out[f"{name}_seconds"] = round(time.time() - t0, 2)
        out[f"{name}_mmd2"] = mmd2(x, ref)
        out[f"{name}_swd"] = sliced_wasserstein(x, ref)
    if gaussian_mixture_for(dataset) is not None:
        g = gaussian_mixture_for(dataset)
        ideal = sample(g.eps_fn(model.noise_schedule), model.noise_schedule, (n, 2), generator=torch.Generator().manual_seed(seed))
        out["ideal_ddpm1000_mmd2"] = mmd2(ideal, ref)
    return out


def evaluate_glyphs(model: DiffusionModel, n_per_digit: int = 20, seed: int = 0, **sample_kwargs) -> dict:
    """Share of conditional samples that the shipped glyph classifier labels with the requested digit."""
    from .classifier import load_glyph_classifier

    clf = load_glyph_classifier(device=str(model.device))
    labels = torch.arange(10).repeat_interleave(n_per_digit)
    kw = {"sampler": "ddim", "num_steps": 100, **sample_kwargs}
    x, _ = model.generate(len(labels), condition=labels, seed=seed, keep_every=10_000, **kw)
    with torch.no_grad():
        pred = clf(x.float()).argmax(1).cpu()
    per_digit = [(pred[labels == d] == d).float().mean().item() for d in range(10)]
    return {"n": len(labels), "accuracy": float((pred == labels).float().mean()), "per_digit": per_digit, "sampler": kw}


def train_preset(name: str, device: str = "auto", out: Path | None = None, steps: int | None = None,
                 seed: int = 0, quiet: bool = False) -> dict:  # fmt: skip
    spec = preset_spec(name)
    steps = steps or spec.steps
    torch.manual_seed(seed)
    model = DiffusionModel({**spec.config, "device": device})
    x, labels = make_dataset(spec.dataset, spec.dataset_size, seed=seed)
    model.setup_training({"learning_rate": spec.learning_rate, "scheduler_steps": steps,
                          "warmup_steps": spec.warmup_steps, "weight_decay": 0.0})  # fmt: skip
    t0, losses = time.time(), []
    for ev in model.train_progressive(x, labels, num_steps=steps, batch_size=spec.batch_size, seed=seed):
        losses.append(ev.loss)
        if not quiet and (ev.step % 50 == 0 or ev.step == steps):
            _progress(ev.step, steps, sum(losses[-50:]) / len(losses[-50:]), t0)
    wall = time.time() - t0
    if not quiet:
        sys.stderr.write("\n")
    model.denoiser.eval()
    t1 = time.time()
    if len(model.data_shape) == 1:
        quality = evaluate_points(model, spec.dataset, seed=seed)
    else:
        quality = evaluate_glyphs(model, seed=seed, **spec.sample_kwargs)
    card = {
        "preset": name, "description": spec.description, "dataset": spec.dataset, "dataset_size": spec.dataset_size,
        "config": model.config, "parameters": model.num_parameters, "steps": steps, "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate, "seed": seed, "train_seconds": round(wall, 1),
        "final_loss": sum(losses[-200:]) / len(losses[-200:]), "eval_seconds": round(time.time() - t1, 1),
        "quality": quality, "machine": machine_info(model.device), "sample_kwargs": spec.sample_kwargs,
        "command": f"python -m adiff.train --preset {name}" + (f" --steps {steps}" if steps != spec.steps else ""),
    }  # fmt: skip
    out = Path(out or PRESET_DIR)
    model.save(out / f"{name}.safetensors", extra={"preset": name, "dataset": spec.dataset}, ema_only=True)
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adiff.train", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, help="preset name (see adiff.presets.list_presets())")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--out", default=None, help=f"output folder (default {PRESET_DIR})")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        card = train_preset(args.preset, args.device, Path(args.out) if args.out else None, args.steps, args.seed)
    except ValueError as e:
        ap.error(str(e))
    q = card["quality"]
    summary = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in q.items() if not isinstance(v, (list, dict))}
    print(f"{args.preset}: {card['steps']} steps in {card['train_seconds']} s, final loss {card['final_loss']:.4f}; {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
