"""Write a preset's quality-against-NFE curve to assets/presets/NAME.nfe.json (what the compare view draws at once).

    python -m adiff.cli.quality --preset moons            # one preset
    python -m adiff.cli.quality --all                     # every 2-D preset, one after the other

MMD² to fresh data for every solver of the preset's process at the NFE budgets of adiff.eval.quality.NFE_GRID (and for
the flow presets also at 1-10 NFE, ``FEW_NFE_GRID``: where a reflowed flow and its teacher differ most), each point
the mean of --draws independent draws of --n points (default 5 of 1000) with its standard error, all from seed 0,
sampled where the app opens the preset: class "any" (the null class of a conditional preset) and the preset's
sampling keywords (clip_x0).  Image presets have no MMD² curve (the compare view shows them without one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import torch

from ..data import make_dataset
from ..eval.quality import DRAWS, NFE_GRID, quality_against_nfe
from ..presets import PRESETS, load_preset, preset_curve_path

__all__ = ["write_curve", "nfe_grid", "FEW_NFE_GRID", "main", "CURVE_N"]

CURVE_N = 1000  # points per draw of a shipped curve: as many as the compare tab's own MMD² of a run
FEW_NFE_GRID = (1, 2, 3, 4, 6, 8)  # added for flows (NFE_GRID starts at 5 and has 10)


def nfe_grid(name: str) -> tuple[int, ...]:
    """The NFE budgets of a preset's curve: NFE_GRID, and 1-10 for the flow presets."""
    flow = PRESETS[name].config.get("process") == "flow"
    return tuple(sorted(set(NFE_GRID) | set(FEW_NFE_GRID))) if flow else NFE_GRID


def write_curve(name: str, n: int = CURVE_N, draws: int = DRAWS, quiet: bool = False) -> dict:
    spec = PRESETS[name]
    model = load_preset(name, "cpu")
    if tuple(model.data_shape) != (2,):
        raise ValueError(f"preset {name!r} is not a 2-D preset: MMD² curves are for points")
    seeds = itertools.count(1000)
    reference = lambda m: make_dataset(spec.dataset, m, seed=next(seeds))[0]  # noqa: E731  (fresh data per call)
    say = None if quiet else (lambda what: sys.stderr.write(f"{name}: {what}\n"))
    curve = quality_against_nfe(
        model, reference, nfes=nfe_grid(name), n=n, draws=draws, seed=0, progress=say, **spec.sample_kwargs
    )
    command = f"python -m adiff.cli.quality --preset {name}"
    if (n, draws) != (CURVE_N, DRAWS):
        command += f" --n {n} --draws {draws}"
    curve.update(
        preset=name,
        process=model.process.name,
        prediction_type=model.prediction_type,
        label="any",  # the class the app opens a 2-D preset on (the null class of a conditional model)
        command=command,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        written=time.strftime("%Y-%m-%d"),
    )
    preset_curve_path(name).write_text(json.dumps(curve, indent=1) + "\n")
    return curve


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--preset", choices=list(PRESETS))
    g.add_argument("--all", action="store_true", help="every 2-D preset")
    ap.add_argument("--n", type=int, default=CURVE_N, help=f"points per draw (default {CURVE_N})")
    ap.add_argument("--draws", type=int, default=DRAWS, help=f"independent draws per point (default {DRAWS})")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [args.preset] if args.preset else [k for k, s in PRESETS.items() if s.config.get("data_shape") == [2]]
    for name in names:
        c = write_curve(name, args.n, args.draws)
        print(f"{name}: {len(c['rows'])} points in {c['seconds']} s -> {preset_curve_path(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
