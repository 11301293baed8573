"""Train a preset from its seed; write its checkpoint and model card as soon as training ends, then evaluate it.

    python -m adiff.train --preset moons [--out runs] [--steps N] [--seed S] [--device auto|cpu|cuda]
                          [--eval-draws N | --no-eval] [--checkpoint-every N] [--resume] [--shards S] [--ship]
    python -m adiff.train --preset moons --eval-only [--ship]     # evaluate the checkpoint there again, rewrite its card
    torchrun --nproc_per_node 2 -m adiff.train --preset moons ...      # DDP: gloo on CPUs, NCCL on GPUs

Files go to --out (default ./runs): NAME.safetensors (loadable by the app), NAME.json (the model card), and during
training NAME.resume.safetensors every --checkpoint-every steps (continue with --resume; removed once the checkpoint is
written).  Replacing a shipped preset in assets/presets/ needs --ship.  The evaluation (adiff.cli.evaluate) samples
where the app opens the preset: its default solver and step count (``PresetSpec.sampling``), class "any" for 2-D
presets (MMD^2 to fresh data; a conditional one also with labels drawn like the data's), "each" for image presets
(the digit classifier's agreement with the requested class), each the mean of --eval-draws draws with its standard
error.
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

from ..model import DiffusionModel
from ..presets import PRESET_DIR, preset_spec
from .distributed import (
    DistInfo,
    close_distributed,
    init_distributed,
    load_resume_state,
    mean_across,
    save_resume_state,
    train_loop,
)
from .evaluate import eval_progress, evaluate_images, evaluate_points, evaluate_preset, progress_bar
from .reflow import training_data

# evaluate_points / evaluate_images / evaluate_preset live in adiff.cli.evaluate (re-exported here).
__all__ = [
    "train_preset",
    "evaluate_shipped",
    "evaluate_points",
    "evaluate_images",
    "evaluate_preset",
    "machine_info",
    "DEFAULT_OUT",
]

DEFAULT_OUT = Path("runs")  # relative to where the command runs; assets/presets/ only with --ship


def machine_info(device: torch.device, dist_info: DistInfo | None = None) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if dist_info is not None and dist_info.distributed:
        info.update(processes=dist_info.world_size, backend=dist_info.backend)
    return info


def evaluate_shipped(
    name: str,
    out: Path,
    device: str = "auto",
    seed: int = 0,
    eval_draws: int = 5,
    threads: int | None = None,
    quiet: bool = False,
    command: str | None = None,
) -> dict:
    """Evaluate the checkpoint out/NAME.safetensors again, as training would have (``--eval-only``), and rewrite the
    quality of its card out/NAME.json; the training figures (steps, wall time, loss, command) stay as they were."""
    spec = preset_spec(name)
    if isinstance(eval_draws, bool) or not isinstance(eval_draws, int) or eval_draws < 1:
        raise ValueError(f"eval_draws must be an integer >= 1, got {eval_draws!r}")
    ckpt = Path(out) / f"{name}.safetensors"
    if not ckpt.is_file():
        raise ValueError(
            f"--eval-only needs a checkpoint at {ckpt}; train it first (python -m adiff.train --preset {name})"
        )
    if threads:
        torch.set_num_threads(threads)
    model = DiffusionModel.load(ckpt, device=device)
    card_path = ckpt.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {"preset": name}
    t1 = time.time()
    card["quality"] = evaluate_preset(model, spec, eval_draws, seed, None if quiet else eval_progress())
    card.update(
        eval="done",
        eval_seconds=round(time.time() - t1, 1),
        sample_kwargs=spec.sample_kwargs,
        eval_command=command or f"python -m adiff.train --preset {name} --eval-only",
        eval_machine=machine_info(model.device),
    )
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def _check_counts(**values: tuple) -> None:
    """field=(value, lowest allowed): each must be an integer >= its bound, else an error naming it."""
    for field, (value, lo) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{field} must be an integer >= {lo}, got {value!r}")


def train_preset(
    name: str,
    device: str = "auto",
    out: Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    quiet: bool = False,
    threads: int | None = None,
    *,
    eval_draws: int = 5,
    evaluate: bool = True,
    resume: bool = False,
    checkpoint_every: int = 1000,
    shards: int | None = None,
    command: str | None = None,
) -> dict:
    """Train preset ``name`` (on every process under torchrun) and, on rank 0, write out/NAME.safetensors and the
    card out/NAME.json when training ends, then evaluate (unless ``evaluate`` is False) and rewrite the card with
    the figures.  Returns the card (an empty dict on the other ranks)."""
    spec = preset_spec(name)
    steps = steps or spec.steps
    _check_counts(steps=(steps, 1), eval_draws=(eval_draws, 1), checkpoint_every=(checkpoint_every, 0))
    if threads:
        torch.set_num_threads(threads)
    out = Path(out or DEFAULT_OUT)
    info = init_distributed(device)
    try:
        shards = shards or info.world_size
        torch.manual_seed(seed)  # the initial weights (DDP also broadcasts rank 0's)
        model = DiffusionModel({**spec.config, "device": str(info.device)})
        t_data, cpu_data = time.time(), time.process_time()  # a reflow preset's pairs count as training time
        data = training_data(spec, model, seed, quiet or not info.is_main)
        model.setup_training(
            {
                "learning_rate": spec.learning_rate,
                "scheduler_steps": steps,
                "warmup_steps": spec.warmup_steps,
                "weight_decay": 0.0,
            }
        )
        run = {
            "preset": name,
            "seed": seed,
            "steps": steps,
            "batch_size": spec.batch_size,
            "shards": shards,
            "dataset_size": spec.dataset_size,
            "learning_rate": spec.learning_rate,
        }
        resume_path = out / f"{name}.resume.safetensors"
        start = load_resume_state(resume_path, model, run) if resume else 0
        if info.is_main and not quiet and start:
            sys.stderr.write(f"resuming {name} at step {start} of {steps} from {resume_path}\n")

        def checkpoint(step: int) -> None:
            if info.is_main:
                save_resume_state(resume_path, model, run)

        t0, losses = time.time(), []
        for ev in train_loop(
            model,
            data.x,
            data.labels,
            noise=data.noise,
            steps=steps,
            batch_size=spec.batch_size,
            seed=seed,
            info=info,
            shards=shards,
            start_step=start,
            on_checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        ):
            losses.append(ev.loss)
            if ev.step % 50 == 0 or ev.step == steps:
                recent = mean_across(sum(losses[-50:]) / len(losses[-50:]), info)  # every process, same steps
                if info.is_main and not quiet:
                    progress_bar("train", ev.step, steps, t0, f" loss {recent:.4f}")
        wall = time.time() - t_data
        # CPU time of all processes together: on a shared machine wall time says more about the neighbours.
        cpu = mean_across(time.process_time() - cpu_data, info) * info.world_size
        final_loss = mean_across(sum(losses[-200:]) / len(losses[-200:]), info)
    finally:
        close_distributed(info)
    if not info.is_main:
        return {}
    card = {
        "preset": name,
        "description": spec.description,
        "dataset": spec.dataset,
        "dataset_size": spec.dataset_size,
        "config": model.config,
        "parameters": model.num_parameters,
        "steps": steps,
        "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate,
        "seed": seed,
        "processes": info.world_size,
        "shards": shards,
        "resumed_at_step": start or None,
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "samples_per_second": round((steps - start) * spec.batch_size / max(wall, 1e-9), 1),
        "final_loss": final_loss,
        "quality": None,
        "eval": "pending" if evaluate else "skipped (--no-eval)",
        "machine": machine_info(model.device, info),
        "sample_kwargs": spec.sample_kwargs,
        "command": command or f"python -m adiff.train --preset {name}",
        **data.card,
    }
    ckpt = model.save(out / f"{name}.safetensors", extra={"preset": name, "dataset": spec.dataset}, ema_only=True)
    card_path = out / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    resume_path.unlink(missing_ok=True)
    if not quiet:
        sys.stderr.write(
            f"wrote {ckpt} and {card_path}" + (" (evaluating next; Ctrl-C keeps them)\n" if evaluate else "\n")
        )
    if evaluate:
        t1 = time.time()
        card["quality"] = evaluate_preset(model, spec, eval_draws, seed, None if quiet else eval_progress())
        card.update(eval="done", eval_seconds=round(time.time() - t1, 1))
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def _command(args) -> str:
    """The command line that reproduces this run, for the model card."""
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world == 1:
        head = "python -m adiff.train"
    elif world == local:  # one machine
        head = f"torchrun --standalone --nproc_per_node {world} -m adiff.train"
    else:  # several: the rendezvous flags are the user's (see the README)
        head = f"torchrun --nnodes {world // local} --nproc_per_node {local} [rendezvous flags] -m adiff.train"
    parts = [head, f"--preset {args.preset}"]
    for flag, value, default in (
        ("--steps", args.steps, None),
        ("--seed", args.seed, 0),
        ("--threads", args.threads, None),
        ("--shards", args.shards, None),
        ("--eval-draws", args.eval_draws, 5),
    ):
        if value != default:
            parts.append(f"{flag} {value}")
    return " ".join(parts + ["--eval-only"] * getattr(args, "eval_only", False) + ["--ship"] * args.ship)


def output_folder(out: str | None, ship: bool, preset: str) -> Path:
    """Where a run writes: --out, the default ./runs, or assets/presets/ with --ship (and only with it)."""
    if ship:
        if out is not None and Path(out).resolve() != PRESET_DIR:
            raise ValueError(f"--ship writes into the shipped preset folder {PRESET_DIR}; drop --out {out}")
        return PRESET_DIR
    folder = Path(out) if out is not None else DEFAULT_OUT
    if folder.resolve() == PRESET_DIR:
        raise ValueError(
            f"--out {out} is the shipped preset folder: pass --ship to replace the shipped preset "
            f"{preset!r} (or choose another --out)"
        )
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adiff.train", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, help="preset name (see adiff.presets.list_presets())")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (under torchrun: one GPU per process)")
    ap.add_argument(
        "--out", default=None, help=f"output folder (default ./{DEFAULT_OUT}; never {PRESET_DIR} without --ship)"
    )
    ap.add_argument("--ship", action="store_true", help=f"write into {PRESET_DIR}, replacing the shipped preset")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; 1 is fastest for the 2-D presets)",
    )
    ap.add_argument(
        "--eval-draws",
        type=int,
        default=5,
        help="evaluation draws after training: 2000-vs-2000 point sets, or 100 images (default 5)",
    )
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation (the card then has quality null)")
    ap.add_argument(
        "--eval-only",
        action="store_true",
        help="do not train: evaluate the checkpoint already in the output folder at the preset's default "
        "solver and steps, and rewrite its card's quality (with --ship: the shipped preset)",
    )
    ap.add_argument(
        "--checkpoint-every",
        type=int,
        default=1000,
        help="write NAME.resume.safetensors every N steps (default 1000; 0 = never)",
    )
    ap.add_argument("--resume", action="store_true", help="continue from NAME.resume.safetensors in the output folder")
    ap.add_argument(
        "--shards",
        type=int,
        default=None,
        help="random streams the global batch is split into (default: the number of processes); "
        "one process with --shards N reproduces an N-process run",
    )
    args = ap.parse_args(argv)
    try:
        out = output_folder(args.out, args.ship, args.preset)
        if args.eval_only:
            clash = [
                flag
                for flag, on in (
                    ("--no-eval", args.no_eval),
                    ("--resume", args.resume),
                    ("--steps", args.steps is not None),
                    ("--shards", args.shards is not None),
                )
                if on
            ]
            if clash:
                raise ValueError(f"--eval-only trains nothing: drop {' '.join(clash)}")
            card = evaluate_shipped(
                args.preset, out, args.device, args.seed, args.eval_draws, args.threads, command=_command(args)
            )
            print(f"{args.preset}: evaluated {out / (args.preset + '.safetensors')}; {_summary(card)}")
            return 0
        card = train_preset(
            args.preset,
            args.device,
            out,
            args.steps,
            args.seed,
            threads=args.threads,
            eval_draws=args.eval_draws,
            evaluate=not args.no_eval,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            shards=args.shards,
            command=_command(args),
        )
    except ValueError as e:
        ap.error(str(e))
    if card:
        print(
            f"{args.preset}: {card['steps']} steps in {card['train_seconds']} s, final loss {card['final_loss']:.4f}; "
            f"{_summary(card)}"
        )
    return 0


def _summary(card: dict):
    q = card["quality"] or {}
    summary = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in q.items() if not isinstance(v, (list, dict))}
    return summary or card["eval"]


if __name__ == "__main__":
    sys.exit(main())
