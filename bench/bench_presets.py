"""Quality of the shipped presets, recomputed now (the model cards hold the figures from training time), where the
app opens each preset: its default solver and step count (``PresetSpec.sampling``), class "any" for 2-D presets (a
conditional one also with labels drawn like the data's: "given labels"), "each" for image presets.

2-D presets: unbiased MMD^2 (RBF mixture, standardised) of 2000 samples to 2000 fresh data points, against the
data-vs-data floor, each the mean over --draws independent draws (+- its standard error: one draw scatters by 1e-4
to 3e-4).  Target: <= 5e-4.  Glyphs and digits: share of conditional samples (--draws x 100) that the digit
classifier labels with the requested digit (target >= 95%); digits also: the copy check, each sample's distance to
its nearest training image against the held-out real images' (samples are not copies when they are no nearer than
held-out images are).

    python bench/bench_presets.py [--presets moons 8gaussians] [--seed 1]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adiff.cli.evaluate import evaluate_images, evaluate_points  # noqa: E402
from adiff.cli.train import machine_info  # noqa: E402
from adiff.presets import list_presets, load_preset, preset_card, preset_spec  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="*", default=list_presets())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--draws", type=int, default=5, help="independent draws of 2000 vs 2000 per figure (images: 100 each)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("machine:", machine_info(torch.device("cpu")))
    rows = []
    for name in args.presets:
        spec, model, card = preset_spec(name), load_preset(name, device="cpu"), preset_card(name)
        t0 = time.time()
        if len(model.data_shape) == 1:
            q = evaluate_points(model, spec.dataset, draws=args.draws, seed=args.seed, **spec.sampling)
            ok = q["mmd2"] <= 5e-4

            def f(key, q=q):
                return f"{q[key]:+.1e}±{q[key + '_se']:.0e}"

            ideal = f"  ideal {f('ideal_mmd2')}" if "ideal_mmd2" in q else ""
            ideal += f"  given labels {f('conditional_mmd2')}" if "conditional_mmd2" in q else ""
            rows.append(
                f"{name:17s} floor {f('floor_mmd2')}  {spec.sampler}-{spec.num_steps} {f('mmd2')}{ideal}  "
                f"swd {q['swd']:.3f}  train {card.get('train_seconds', '?')} s  {'MET' if ok else 'NOT MET'}  "
                f"({time.time() - t0:.0f} s)"
            )
            print("  draws:", {k: [f"{v:+.1e}" for v in q[k + "_draws"]] for k in ("floor_mmd2", "mmd2")})
        else:
            q = evaluate_images(model, spec.dataset, draws=args.draws, seed=args.seed, **spec.sampling)
            rows.append(
                f"{name:17s} {spec.sampler}-{spec.num_steps}: the classifier agrees with the requested digit on "
                f"{q['accuracy']:.1%}±{q['accuracy_se']:.1%} of {q['n']} samples (per digit "
                f"{[round(v, 2) for v in q['per_digit']]})  train {card.get('train_seconds', '?')} s  "
                f"{'MET' if q['accuracy'] >= 0.95 else 'NOT MET'}  ({time.time() - t0:.0f} s)"
            )
            if "copy_check" in q:
                c = q["copy_check"]
                ok = c["share_closer_than_any_heldout"] <= 0.05 and c["ratio_of_medians"] >= 0.8
                rows.append(
                    f"{'':13s} copy check: distance to the nearest training image, samples {c['samples']} vs "
                    f"held-out real images {c['heldout']}; median ratio {c['ratio_of_medians']}, "
                    f"{c['share_closer_than_any_heldout']:.1%} of samples nearer than any held-out image  "
                    f"{'NOT COPIES' if ok else 'COPIES?'}"
                )
        print(rows[-1], flush=True)
    print("\n".join(["", "summary:"] + rows))


if __name__ == "__main__":
    main()
