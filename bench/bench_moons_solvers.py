"""The shipped moons preset's samples by solver at equal seeds: MMD² to the app's reference data (500 samples against
the 500 points of make_dataset("moons", 2000, seed=123), what the reverse tab's summary reports), paired against
DDIM-100 on the same x_T, mean over seeds with the standard error of the paired differences.

    python bench/bench_moons_solvers.py [--seeds 10] [--out bench/results/bench_moons_solvers.txt]

Beside bench_solvers.py (exact mixtures, where the true score is known): this is the learned network, where a
higher-order solver's extrapolation also carries the network's error.
"""

from __future__ import annotations

import math

from common import base_parser, print_footer, print_header, print_table, setup

from adiff.data import make_dataset
from adiff.eval.metrics import MMDReference
from adiff.presets import load_preset
from adiff.samplers import SOLVERS

# (sampler, steps, clip_x0): the tab's default (DPM-Solver++ 25) and its neighbours at equal and other NFE
SETTINGS = [
    ("ddim", 100, 4.0),
    ("dpmpp_2m", 25, 4.0),
    ("ddim", 25, 4.0),
    ("euler", 25, 4.0),
    ("heun", 13, 4.0),
    ("dpmpp_2m", 25, None),
    ("ddim", 25, None),
    ("dpmpp_2m", 10, 4.0),
    ("ddim", 10, 4.0),
    ("dpmpp_2m", 50, 4.0),
    ("dpmpp_2m", 100, 4.0),
]


def main() -> int:
    ap = base_parser(__doc__, "bench_moons_solvers")
    ap.add_argument("--seeds", type=int, default=10, help="paired seeds 1000..1000+N-1")
    args = ap.parse_args()
    device = setup(args)
    print_header("bench_moons_solvers: the moons preset by solver, paired MMD² to data", device, args)
    model = load_preset("moons", "cpu")
    ref, _ = make_dataset("moons", 2000, seed=123)
    reference = MMDReference(ref[:500])
    seeds = range(1000, 1000 + args.seeds)

    def run(sampler, steps, clip):
        return [
            reference(model.generate(500, sampler=sampler, num_steps=steps, seed=s, clip_x0=clip, keep_every=10**6)[0])
            for s in seeds
        ]

    values = {s: run(*s) for s in SETTINGS}
    base = values[SETTINGS[0]]
    rows = []
    for (sampler, steps, clip), v in values.items():
        d = [a - b for a, b in zip(v, base)]
        mean_d = sum(d) / len(d)
        se = math.sqrt(sum((x - mean_d) ** 2 for x in d) / (len(d) - 1) / len(d)) if len(d) > 1 else float("nan")
        nfe = SOLVERS[sampler].nfe(steps)
        rows.append([f"{sampler}-{steps}", nfe, clip, f"{sum(v) / len(v):.2e}", f"{mean_d:+.2e} (SE {se:.1e})"])
    print_table(
        ["solver", "NFE", "clip_x0", "MMD² mean", "minus DDIM-100, paired"], rows, f"{len(seeds)} seeds, 500 samples"
    )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
