"""Training on one process against two (torchrun + DDP, gloo on CPUs / NCCL on GPUs): time per step and samples/s.

Each case is the real command, `python -m adiff.train --preset P --steps N --no-eval --checkpoint-every 0` or the
same under `torchrun --standalone --nproc_per_node 2`, in a fresh process; the figure is the training loop's own
time from the model card (start-up, data and the checkpoint write excluded) and its CPU time (all processes).  The
cases run round-robin, the order reversing every round, so the ratios compare runs made side by side.

    python bench/bench_ddp.py [--presets moons digits] [--steps 300] [--rounds 3] [--device cpu|cuda]

Cases (CPU): 1 process x 1 thread and 2 processes x 1 thread (gloo); --with-threads adds 1 process x 2 threads (the
same two cores used by threads inside one process).  With --device cuda: 1 process on 1 GPU, and 2 processes on 2 GPUs
(NCCL) when there are two.  Output: bench/results/bench_ddp.txt (with --out).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import ROOT, base_parser, paired_ratio, print_footer, print_header, stats  # noqa: E402


def run_case(preset: str, steps: int, procs: int, threads: int, device: str, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    train = [
        "-m",
        "adiff.train",
        "--preset",
        preset,
        "--steps",
        str(steps),
        "--no-eval",
        "--checkpoint-every",
        "0",
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--device",
        device,
    ]
    head = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
        if procs > 1
        else [sys.executable]
    )
    r = subprocess.run(head + train, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"case failed ({' '.join(head + train)}):\n{r.stderr[-3000:]}")
    return json.loads((out / f"{preset}.json").read_text())


def main() -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--presets", nargs="*", default=["moons", "digits"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--with-threads",
        action="store_true",
        help="add 1 process x 2 threads (on an oversubscribed machine OpenMP threads spin: very slow)",
    )
    args = ap.parse_args()
    if args.quick:
        args.steps, args.rounds = 100, 2
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit(f"error: --device {args.device} was asked for, but torch {torch.__version__} sees no CUDA GPU here")
    if cuda:
        cases = {"1 proc, 1 GPU": (1, 1)}
        if torch.cuda.device_count() >= 2:
            cases["2 procs, 2 GPUs (NCCL)"] = (2, 1)
    else:
        cases = {"1 proc x 1 thread": (1, 1), "2 procs x 1 thread (gloo)": (2, 1)}
        if args.with_threads:  # the same two cores as two OpenMP threads of one process
            cases["1 proc x 2 threads"] = (1, 2)
    info = print_header(
        "bench_ddp: one process against two (torchrun, DDP)",
        args.device,
        args,
        {"steps": args.steps, "rounds": args.rounds, "cases": list(cases)},
    )
    base = next(iter(cases))
    summary = []
    for preset in args.presets:
        times: dict[str, list[float]] = {k: [] for k in cases}
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        batch = None
        for r in range(args.rounds):
            order = list(cases) if r % 2 == 0 else list(cases)[::-1]
            for name in order:
                procs, threads = cases[name]
                with tempfile.TemporaryDirectory() as tmp:
                    card = run_case(preset, args.steps, procs, threads, "cuda" if cuda else "cpu", Path(tmp))
                batch = card["batch_size"]
                times[name].append(card["train_seconds"] / args.steps)
                cpu[name].append(card["train_cpu_seconds"] / args.steps)
            print(
                f"  {preset} round {r + 1}/{args.rounds}: "
                + ", ".join(f"{k} {times[k][-1] * 1e3:.1f} ms/step" for k in cases),
                flush=True,
            )
        print(f"\n{preset} (global batch {batch}, {args.steps} steps; medians over {args.rounds} rounds, min-max):")
        for name in cases:
            med, lo, hi = stats(times[name])
            sps = batch / med
            ratio = paired_ratio(times, base, name)
            line = (
                f"  {name:28s} {med * 1e3:7.1f} ms/step ({lo * 1e3:.1f}-{hi * 1e3:.1f})  {sps:8,.0f} samples/s  "
                f"speed-up vs {base}: {ratio[0]:.2f}x ({ratio[1]:.2f}-{ratio[2]:.2f})  "
                f"CPU {stats(cpu[name])[0] * 1e3:.1f} ms/step"
            )
            print(line)
            summary.append(f"{preset:8s} {line.strip()}")
    print(
        "\nsummary (machine: "
        + f"{info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, load {info.get('loadavg')}):"
    )
    print("\n".join(summary))
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
