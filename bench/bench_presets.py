"""Quality of the shipped presets, recomputed now (the model cards hold the figures from training time).

2-D presets: unbiased MMD^2 (RBF mixture, standardised) of 2000 DDPM-1000 and DDIM-50 samples to 2000 fresh data
points, against the data-vs-data floor, each the mean over --draws independent draws (+- its standard error: one
draw scatters by 1e-4 to 3e-4).  Targets: DDPM-1000 <= 5e-4; DDIM-50 within +2e-4 of DDPM-1000 (paired by draw).
Glyphs and digits: share of conditional samples (--draws x 100) that the digit classifier labels with the requested
digit (target >= 90%); digits also: the copy check, each sample's distance to its nearest training image against the
held-out real images' (samples are not copies when they are no nearer than held-out images are).

    python bench/bench_presets.py [--presets moons 8gaussians] [--seed 0]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adiff.presets import list_presets, load_preset, preset_card, preset_spec  # noqa: E402
from adiff.cli.train import evaluate_images, evaluate_points, machine_info  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="*", default=list_presets())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--draws", type=int, default=5, help="independent draws of 2000 vs 2000 per figure (images: 100 each)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("machine:", machine_info(torch.device("cpu")))
    rows = []
    for name in args.presets:
        spec, model, card = preset_spec(name), load_preset(name, device="cpu"), preset_card(name)
        t0 = time.time()
        if len(model.data_shape) == 1:
            q = evaluate_points(model, spec.dataset, draws=args.draws, seed=args.seed)
            gap = q["ddim50_minus_ddpm1000"]
            ok = q["ddpm1000_mmd2"] <= 5e-4 and gap <= 2e-4

            def f(key):
                return f"{q[key]:+.1e}±{q[key + '_se']:.0e}"

            rows.append(f"{name:13s} floor {f('floor_mmd2')}  DDPM-1000 {f('ddpm1000_mmd2')}  DDIM-50 {f('ddim50_mmd2')} "
                        f"(gap {f('ddim50_minus_ddpm1000')})  swd {q['ddpm1000_swd']:.3f}/{q['ddim50_swd']:.3f} "
                        f"train {card.get('train_seconds', '?')} s  {'MET' if ok else 'NOT MET'}  ({time.time() - t0:.0f} s)")
            print("  draws:", {k: [f"{v:+.1e}" for v in q[k + "_draws"]] for k in ("floor_mmd2", "ddpm1000_mmd2", "ddim50_mmd2")})
        else:
            q = evaluate_images(model, spec.dataset, draws=args.draws, seed=args.seed, **spec.sample_kwargs)
            rows.append(f"{name:13s} classifier agrees with the requested digit on {q['accuracy']:.1%} of {q['n']} samples "
                        f"(per digit {[round(v, 2) for v in q['per_digit']]})  train {card.get('train_seconds', '?')} s  "
                        f"{'MET' if q['accuracy'] >= 0.9 else 'NOT MET'}  ({time.time() - t0:.0f} s)")
            if "copy_check" in q:
                c = q["copy_check"]
                ok = c["share_closer_than_any_heldout"] <= 0.05 and c["ratio_of_medians"] >= 0.8
                rows.append(f"{'':13s} copy check: distance to the nearest training image, samples {c['samples']} vs "
                            f"held-out real images {c['heldout']}; median ratio {c['ratio_of_medians']}, "
                            f"{c['share_closer_than_any_heldout']:.1%} of samples nearer than any held-out image  "
                            f"{'NOT COPIES' if ok else 'COPIES?'}")
        print(rows[-1], flush=True)
    print("\n".join(["", "summary:"] + rows))


if __name__ == "__main__":
    main()
