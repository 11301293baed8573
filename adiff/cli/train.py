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

from ..data import gaussian_mixture_for, make_dataset
from ..eval.metrics import mmd2, sliced_wasserstein
from ..model import DiffusionModel
from ..presets import PRESET_DIR, preset_spec
from ..diffusion.parameterization import Predictor
from ..samplers import sample

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


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), (float(v.std() / len(values) ** 0.5) if len(values) > 1 else float("nan"))


def evaluate_points(model: DiffusionModel, dataset: str, n: int = 2000, draws: int = 5, seed: int = 0) -> dict:
    """MMD^2 / sliced Wasserstein of n DDPM-1000 and n DDIM-50 samples to n fresh data points, and the
    data-vs-data floor, each over ``draws`` independent draws (fresh data, fresh noise).

    One draw of unbiased MMD^2 at n = 2000 scatters by about 1e-4 to 3e-4, as much as the differences it is
    meant to show, so every figure is the mean over the draws with its standard error (``*_se``); the draws
    themselves are in ``*_draws``.  ``ddim50_minus_ddpm1000`` pairs the two samplers on the same data draw.
    """
    refs, others, conds = [], [], []
    for k in range(draws):
        s = seed * 1000 + k
        refs.append(make_dataset(dataset, n, seed=10_000 + s)[0])
        others.append(make_dataset(dataset, n, seed=20_000 + s)[0])
        conds.append(make_dataset(dataset, n, seed=30_000 + s)[1])  # conditional models: labels from the data
    cond = torch.cat(conds) if model.is_conditional else None
    per: dict[str, list[float]] = {"floor_mmd2": [mmd2(o, r) for o, r in zip(others, refs)]}
    per["floor_swd"] = [sliced_wasserstein(o, r) for o, r in zip(others, refs)]
    out = {"n": n, "draws": draws}
    for name, kw in (("ddpm1000", {"sampler": "ddpm"}), ("ddim50", {"sampler": "ddim", "num_steps": 50})):
        t0 = time.time()  # all draws in one batch (less overhead); the draws stay independent
        x, _ = model.generate(n * draws, condition=cond, seed=seed, keep_every=10_000, **kw)
        out[f"{name}_seconds"] = round(time.time() - t0, 2)
        xs = x.cpu().split(n)
        per[f"{name}_mmd2"] = [mmd2(xk, r) for xk, r in zip(xs, refs)]
        per[f"{name}_swd"] = [sliced_wasserstein(xk, r) for xk, r in zip(xs, refs)]
    per["ddim50_minus_ddpm1000"] = [a - b for a, b in zip(per["ddim50_mmd2"], per["ddpm1000_mmd2"])]
    g = gaussian_mixture_for(dataset)
    if g is not None:
        proc = model.process
        ideal = sample(Predictor(g.model_fn(proc, "sample"), proc, "sample"), proc, (n * draws, 2),
                       generator=torch.Generator().manual_seed(seed))  # fmt: skip
        per["ideal_ddpm1000_mmd2"] = [mmd2(xk, r) for xk, r in zip(ideal.split(n), refs)]
    for key, values in per.items():
        out[key], out[f"{key}_se"] = _mean_se(values)
        out[f"{key}_draws"] = values
    return out


def evaluate_glyphs(model: DiffusionModel, n_per_digit: int = 20, seed: int = 0, **sample_kwargs) -> dict:
    """Share of conditional samples that the shipped glyph classifier labels with the requested digit."""
    from ..eval.classifier import load_glyph_classifier

    clf = load_glyph_classifier(device=str(model.device))
    labels = torch.arange(10).repeat_interleave(n_per_digit)
    kw = {"sampler": "ddim", "num_steps": 100, **sample_kwargs}
    x, _ = model.generate(len(labels), condition=labels, seed=seed, keep_every=10_000, **kw)
    with torch.no_grad():
        pred = clf(x.float()).argmax(1).cpu()
    per_digit = [(pred[labels == d] == d).float().mean().item() for d in range(10)]
    return {"n": len(labels), "accuracy": float((pred == labels).float().mean()), "per_digit": per_digit, "sampler": kw}


def train_preset(name: str, device: str = "auto", out: Path | None = None, steps: int | None = None,
                 seed: int = 0, quiet: bool = False, threads: int | None = None) -> dict:  # fmt: skip
    spec = preset_spec(name)
    if threads:
        torch.set_num_threads(threads)
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
        "command": f"python -m adiff.train --preset {name}" + (f" --steps {steps}" if steps != spec.steps else "")
        + (f" --seed {seed}" if seed else "") + (f" --threads {threads}" if threads else ""),
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
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch (default: torch's choice; 1 is fastest for the 2-D presets)")
    args = ap.parse_args(argv)
    try:
        card = train_preset(args.preset, args.device, Path(args.out) if args.out else None, args.steps, args.seed,
                            threads=args.threads)  # fmt: skip
    except ValueError as e:
        ap.error(str(e))
    q = card["quality"]
    summary = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in q.items() if not isinstance(v, (list, dict))}
    print(f"{args.preset}: {card['steps']} steps in {card['train_seconds']} s, final loss {card['final_loss']:.4f}; {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
