"""The point denoiser's forward on the CPU, per row, as shipped against the same network with its inference shortcuts
switched off one at a time and all together (the ops it ran before them): what each one buys, side by side.

    python bench/bench_forward.py [--quick] [--preset moons] [--repeats 7]

Modes (each a copy of the preset's EMA network, traced under its own mode, as the app's engine runs it):
* shipped: the MLP's first layer and GELU as one oneDNN op, adaLN modulation and the gated residual as one addcmul
  each, attention over two keys as a sigmoid of the score difference, rows at several times run time by time;
* no fused MLP layer: the layer, then TanhGELU (adiff/nn/gelu.py);
* rows at their times copied: each row gets a copy of its time's modulation rows (index_select), in row order;
* before: all of that off, with the two-op modulation and residual of 191fe59 and its attention by broadcast products
  (``Attention._products``, which the network still uses for other small attentions).
Cases: one run alone (500 rows at one time), a round of the engine in lockstep (8,000 rows at one time), and a round
of 16 runs at two steps (16 x 500 rows, two times interleaved).  One torch thread (as each of the engine's workers).
Each case's modes are timed round-robin (``--repeats`` rounds, order reversed every round); medians with min-max,
and each mode's paired ratio to shipped.  The outputs of every mode are compared with shipped's (max |difference|).
"""

from __future__ import annotations

import contextlib
import copy

import torch
from common import base_parser, fmt_stats, interleaved, paired_ratio, print_footer, print_header, print_table, setup

from adiff.nn import denoisers, gelu, rows
from adiff.presets import load_preset


def _modulate_two_ops(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _gated_two_ops(x, gate, y):
    return x + gate.unsqueeze(1) * y


@contextlib.contextmanager
def mode(name: str):
    saved = (gelu.fused_op, rows.time_groups, denoisers._modulate, denoisers._gated, denoisers.Attention._two_keys)
    try:
        if name in ("no fused MLP layer", "before"):
            gelu.fused_op = lambda: None
        if name in ("rows at their times copied", "before"):
            rows.time_groups = lambda *a: None
        if name == "before":  # the two-op adaLN and residual, and two keys by the general broadcast products
            denoisers._modulate, denoisers._gated = _modulate_two_ops, _gated_two_ops
            denoisers.Attention._two_keys = denoisers.Attention._products
        yield
    finally:
        gelu.fused_op, rows.time_groups, denoisers._modulate, denoisers._gated, denoisers.Attention._two_keys = saved


MODES = ("shipped", "no fused MLP layer", "rows at their times copied", "before")


def cases(quick: bool) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(0)
    out = {"one run alone (500 rows, 1 time)": (torch.randn(500, 2, generator=g), torch.tensor([0.5]), None)}
    if not quick:
        out["lockstep round (8,000 rows, 1 time)"] = (torch.randn(8000, 2, generator=g), torch.tensor([0.5]), None)
    t_index = torch.cat([torch.full((500,), i % 2) for i in range(16)])
    out["16 runs at 2 steps (8,000 rows)"] = (torch.randn(8000, 2, generator=g), torch.tensor([0.6, 0.4]), t_index)
    return out


def main() -> int:
    ap = base_parser(__doc__, results_name="bench_forward")
    ap.add_argument("--preset", default="moons")
    ap.set_defaults(threads=1, repeats=7)
    args = ap.parse_args()
    device = setup(args)
    if device.type != "cpu":
        raise SystemExit("error: bench_forward.py measures the CPU path (the fused op and the traces are CPU-only)")
    print_header("bench_forward: the point denoiser's forward per row, shortcuts on and off", device, args)
    base = load_preset(args.preset, device="cpu").ema.module.eval()
    nets = {m: copy.deepcopy(base) for m in MODES}
    repeats = 2 if args.quick else args.repeats
    rows = []
    for label, (x, t, t_index) in cases(args.quick).items():
        calls = max(2, 16_000 // x.shape[0])

        def run(m, x=x, t=t, t_index=t_index, calls=calls):
            with torch.no_grad(), mode(m):
                for _ in range(calls):
                    out = nets[m](x, t, None, t_index)
            return out

        outs = {m: run(m) for m in MODES}  # traced under its mode here
        diff = {m: float((outs[m] - outs["shipped"]).abs().max()) for m in MODES}
        print(f"  {label}: {calls} calls a round", flush=True)
        times = interleaved({m: (lambda m=m: run(m)) for m in MODES}, repeats, warmup=False, device=device)
        per_row = 1e6 / (calls * x.shape[0])
        for m in MODES:
            ratio = "1" if m == "shipped" else fmt_stats(paired_ratio(times, m, "shipped"), "x", digits=2)
            med = sorted(times[m])[len(times[m]) // 2] * per_row
            rows.append(
                [
                    label,
                    m,
                    f"{med:.2f}",
                    fmt_stats((med, min(times[m]) * per_row, max(times[m]) * per_row), digits=2),
                    ratio,
                    f"{diff[m]:.1e}",
                ]
            )
    print()
    print_table(
        ["case", "mode", "us / row", "median (min-max)", "mode / shipped", "max |out - shipped|"],
        rows,
        title=f"{args.preset}: one thread, {repeats} interleaved rounds",
    )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
