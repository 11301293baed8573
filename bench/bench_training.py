"""Training: samples per second, and wall time to reach MMD^2 <= 5e-4 on moons, adiff's transformer denoiser (the
moons preset's architecture) against a plain MLP DDPM of the same parameter count trained the same way.

    python bench/bench_training.py [--quick] [--threads 1] [--steps 6000] [--minutes 10] [--device cuda] [--compile]

"The same way": both are DiffusionModels built from the moons preset's config (linear schedule, T = 1000, EMA 0.999)
and trained by the same code path (DiffusionModel.train_progressive: AdamW, LR 2e-3, 200 warm-up steps then cosine
over --steps, batch 256, gradient clipping 1.0, the same 50,000-point dataset and seed); for the MLP the model's
denoiser and EMA are swapped for the MLP before training.  The MLP: sinusoidal time embedding (64) -> 2-layer MLP,
added to a linear embedding of x, then ``--mlp-layers`` SiLU+Linear layers of a width chosen to match the
transformer's parameter count, SiLU, Linear to 2.

The two trainings run interleaved, ``--chunk`` steps at a time, so both see the same machine load; the training wall
time of each counts only its own chunks.  Every ``--eval-every`` steps each model's EMA weights draw ``--eval-points``
DDPM-1000 samples (seed 0) and MMD^2 is taken against fresh moons data (seed 10000), as the preset's model card does
(adiff.cli.train.evaluate_points); evaluation time is not counted as training time.  A model stops once it reaches the
threshold; the run stops at --steps or when the --minutes budget is spent.
--quick: 1000 steps, evaluations every 500 steps on 500 points (a smoke test: the threshold is not expected).
"""

from __future__ import annotations

import math
import sys
import time

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from common import base_parser, print_footer, print_header, print_table, setup

from adiff.data import make_dataset  # noqa: E402
from adiff.eval.metrics import mmd2  # noqa: E402
from adiff.model import DiffusionModel  # noqa: E402
from adiff.nn.denoisers import timestep_embedding  # noqa: E402
from adiff.nn.ema import EMA  # noqa: E402
from adiff.presets import preset_spec  # noqa: E402

THRESHOLD = 5e-4


class MLPDenoiser(nn.Module):
    """eps(x [B, 2], t [B] in [0, 1]) with a plain MLP: (Linear(x) + MLP(sinusoid(t))) -> layers x (SiLU, Linear) -> out."""

    def __init__(self, hidden: int, layers: int = 3, emb: int = 64, dim: int = 2):
        super().__init__()
        self.emb = emb
        self.x_in = nn.Linear(dim, hidden)
        self.t_mlp = nn.Sequential(nn.Linear(emb, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        body = []
        for _ in range(layers):
            body += [nn.SiLU(), nn.Linear(hidden, hidden)]
        self.body = nn.Sequential(*body)
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition=None) -> torch.Tensor:
        if condition is not None:
            raise ValueError("the MLP baseline is unconditional")
        h = self.x_in(x) + self.t_mlp(timestep_embedding(t, self.emb))  # [B, H]
        return self.out(self.body(h))  # [B, 2]


def mlp_params(hidden: int, layers: int) -> int:
    return sum(p.numel() for p in MLPDenoiser(hidden, layers).parameters())


def matching_width(target: int, layers: int) -> int:
    """The MLP width whose parameter count is closest to ``target``."""
    h = int(math.sqrt(target / (layers + 1)))
    best = min(range(max(8, h - 64), h + 64), key=lambda w: abs(mlp_params(w, layers) - target))
    return best


def build(kind: str, cfg: dict, device, compile: bool, mlp_width: int, mlp_layers: int) -> DiffusionModel:
    torch.manual_seed(0)
    model = DiffusionModel({**cfg, "device": str(device)})
    if kind == "mlp":
        net = MLPDenoiser(mlp_width, mlp_layers).to(device)
        model.denoiser = net
        model.ema = EMA(net, model.cfg.ema_decay)
    if compile:
        model.denoiser = torch.compile(model.denoiser)
        model.ema.module = torch.compile(model.ema.module)
    return model


def main() -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--steps", type=int, default=None, help="training steps per model (default 6000; --quick 1000)")
    ap.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default 500; --quick 500)")
    ap.add_argument("--eval-points", type=int, default=None, help="samples per evaluation (default 2000; --quick 500)")
    ap.add_argument("--chunk", type=int, default=50, help="steps per interleaved chunk")
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default 10; --quick 2)")
    ap.add_argument("--mlp-layers", type=int, default=3)
    args = ap.parse_args()
    device = setup(args)
    steps = args.steps or (1000 if args.quick else 6000)
    eval_every = args.eval_every or 500
    n_eval = args.eval_points or (500 if args.quick else 2000)
    budget = 60 * (args.minutes or (2.0 if args.quick else 10.0))
    spec = preset_spec("moons")
    cfg = {**spec.config, "precision": "bf16" if device.type == "cuda" else "fp32"}
    target_params = DiffusionModel({**cfg, "device": "cpu"}).num_parameters
    width = matching_width(target_params, args.mlp_layers)
    info = print_header(
        "bench_training: transformer vs plain MLP DDPM on moons",
        device,
        args,
        {
            "steps": steps,
            "eval_every": eval_every,
            "eval_points": n_eval,
            "budget_s": budget,
            "batch": spec.batch_size,
            "lr": spec.learning_rate,
            "compile": args.compile,
        },
    )
    t_start = time.perf_counter()
    x, _ = make_dataset(spec.dataset, spec.dataset_size, seed=0)
    x = x.to(device)
    ref, _ = make_dataset(spec.dataset, n_eval, seed=10_000)
    other, _ = make_dataset(spec.dataset, n_eval, seed=20_000)
    floor = mmd2(other, ref)
    models = {
        "transformer": build("transformer", cfg, device, args.compile, width, args.mlp_layers),
        "mlp": build("mlp", cfg, device, args.compile, width, args.mlp_layers),
    }
    params = {k: m.num_parameters for k, m in models.items()}
    print(
        f"  parameters: transformer {params['transformer']:,}, MLP {params['mlp']:,} (width {width}, "
        f"{args.mlp_layers} hidden layers); data-vs-data MMD^2 floor at n = {n_eval}: {floor:.2e}",
        flush=True,
    )
    iters = {}
    for k, m in models.items():
        m.setup_training(
            {
                "learning_rate": spec.learning_rate,
                "scheduler_steps": steps,
                "warmup_steps": min(spec.warmup_steps, steps // 10),
                "weight_decay": 0.0,
            }
        )
        iters[k] = m.train_progressive(x, None, num_steps=steps, batch_size=spec.batch_size, seed=0)
    train_s = {k: 0.0 for k in models}
    done = {k: 0 for k in models}
    reached = {k: None for k in models}  # (step, train seconds, mmd2)
    last_mmd = {k: None for k in models}
    evals = {k: [] for k in models}
    interleaved_s = {k: 0.0 for k in models}  # training time while both were still training
    interleaved_steps = {k: 0 for k in models}
    eval_s = {k: 0.0 for k in models}
    active = list(models)
    stop_reason = f"{steps} steps"
    rnd = 0
    while active:
        if time.perf_counter() - t_start > budget:
            stop_reason = f"the {budget / 60:.0f}-minute budget"
            break
        order = active if rnd % 2 == 0 else active[::-1]
        both = len(active) == 2
        for k in order:
            n_steps = min(args.chunk, steps - done[k])
            t0 = time.perf_counter()
            for _ in range(n_steps):
                ev = next(iters[k])
            dt = time.perf_counter() - t0
            train_s[k] += dt
            done[k] += n_steps
            if both:
                interleaved_s[k] += dt
                interleaved_steps[k] += n_steps
            if done[k] % eval_every == 0 or done[k] == steps:
                m = models[k]
                m.denoiser.eval()
                t1 = time.perf_counter()
                with torch.no_grad():
                    s, _ = m.generate(n_eval, sampler="ddpm", seed=0, keep_every=10**6)
                v = mmd2(s.float().cpu(), ref)
                eval_s[k] += time.perf_counter() - t1
                last_mmd[k] = v
                evals[k].append((done[k], train_s[k], v))
                print(
                    f"  {k:>11} step {done[k]:5d}: loss {ev.loss:.4f}, MMD^2 {v:.2e}, training {train_s[k]:.1f} s "
                    f"({done[k] * spec.batch_size / train_s[k]:.0f} samples/s), eval {time.perf_counter() - t1:.1f} s",
                    flush=True,
                )
                if v <= THRESHOLD and reached[k] is None:
                    reached[k] = (done[k], train_s[k], v)
            if reached[k] is not None or done[k] >= steps:
                active.remove(k)
        rnd += 1
    total = time.perf_counter() - t_start
    if all(reached.values()):
        stop_reason = "both models reaching the threshold"

    rows = []
    sps = {k: (interleaved_steps[k] or done[k]) * spec.batch_size / (interleaved_s[k] or train_s[k]) for k in models}
    for k in models:
        r = reached[k]
        rows.append(
            [
                k,
                f"{params[k]:,}",
                f"{sps[k]:,.0f}",
                done[k],
                f"{train_s[k]:.1f}",
                f"{last_mmd[k]:.2e}" if last_mmd[k] is not None else "-",
                f"{r[1]:.1f} s (step {r[0]}, {r[2]:.2e})" if r else f"not reached in {done[k]} steps",
            ]
        )
    print_table(
        [
            "model",
            "params",
            "samples/s (interleaved)",
            "steps",
            "train s",
            "last MMD^2",
            f"time to MMD^2 <= {THRESHOLD:g}",
        ],
        rows,
        f"bench_training results on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, "
        f"threads {info['threads']}, device {info['device']}{', compiled' if args.compile else ''}",
    )
    ratio = sps["transformer"] / sps["mlp"]
    print(
        f"\nthroughput ratio transformer / MLP: {ratio:.2f}x samples/s (measured in interleaved {args.chunk}-step chunks)"
    )
    if reached["transformer"] and reached["mlp"]:
        print(f"time-to-threshold ratio transformer / MLP: {reached['transformer'][1] / reached['mlp'][1]:.2f}x")
    print(
        f"stopped by {stop_reason}; evaluations: DDPM-1000, {n_eval} points, every {eval_every} steps "
        f"(transformer {eval_s['transformer']:.0f} s, MLP {eval_s['mlp']:.0f} s, not counted); MMD^2 floor {floor:.2e}; "
        f"total {total:.0f} s"
    )
    for k in models:
        print(f"  {k} curve (step, train s, MMD^2): " + ", ".join(f"({s}, {t:.0f}, {v:.1e})" for s, t, v in evals[k]))
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
