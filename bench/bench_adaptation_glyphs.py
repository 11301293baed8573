"""Image adaptation (the glyphs and digits presets) with the app's defaults (components/adaptation/handlers.py, KIND_DEFAULTS["images"]): does the reward
visibly rise within 30 steps, and do the samples stay digits?  Every --eval-every steps: the mean reward of the
evaluation samples (lambda = 0, the same seed; --eval-samples of them, the app draws 36), its share of the gain of the
tilted data (the data weighted by exp(lambda r): the target's mean reward), the share of samples that the preset's
digit classifier (adiff/eval/classifier.py) reads with confidence > 0.9, and its digit histogram.

    python bench/bench_adaptation_glyphs.py [--preset glyphs|digits] [--reward brightness] [--lam L] [--steps 30]
                                            [--set key=value ...]
Writes bench/results/bench_adaptation_<preset>.txt (or _<preset>_<tag>.txt).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import Transcript, code_version, config_overrides  # noqa: E402  (sets the malloc env)

from adiff.data import make_dataset  # noqa: E402
from adiff.eval.classifier import load_digits_classifier, load_glyph_classifier  # noqa: E402
from adiff.presets import load_preset, preset_spec  # noqa: E402
from adiff.steering.adaptation import AdaptationConfig, Adapter  # noqa: E402
from adiff.steering.rewards import make_reward  # noqa: E402
from components.adaptation.handlers import DEFAULTS, KIND_DEFAULTS, SAMPLE_STEPS  # noqa: E402


def main():
    d = KIND_DEFAULTS["images"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=["glyphs", "digits"], default="glyphs")
    ap.add_argument("--reward", default="brightness")
    ap.add_argument("--lam", type=float, default=d.guidance_scale)
    ap.add_argument("--steps", type=int, default=d.num_steps)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--eval-samples", type=int, default=200)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--set", nargs="*", default=[], help="AdaptationConfig overrides, e.g. learning_rate=1e-3")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Transcript()

    clf = (load_glyph_classifier if args.preset == "glyphs" else load_digits_classifier)(device="cpu")

    def digits(x):
        with torch.no_grad():
            conf, cls = torch.softmax(clf(x.float()), -1).max(-1)
        return float((conf > 0.9).float().mean()), torch.bincount(cls, minlength=10).tolist()

    over = config_overrides(AdaptationConfig, args.set)
    cfg = AdaptationConfig(
        **{
            "learning_rate": d.learning_rate,
            "batch_size": d.batch_size,
            "guidance_scale": args.lam,
            "replay_share": DEFAULTS.replay_share,
            "buffer_share": DEFAULTS.buffer_share,
            "buffer_capacity": d.buffer_capacity,
            "warmup_steps": d.warmup_steps,
            "sample_steps": SAMPLE_STEPS,
            "eval_samples": args.eval_samples,
            "eval_every": args.eval_every,
            **over,
        }
    )
    reward = make_reward(args.reward)
    data = make_dataset(preset_spec(args.preset).dataset, 2000, seed=0)  # what the app replays
    with torch.no_grad():
        r = reward(data[0]).double()
    target = float((torch.softmax(args.lam * r, 0) * r).sum())
    t0 = time.time()
    model = load_preset(args.preset, device="cpu").clone(device="cpu")
    adapter = Adapter(model, reward, cfg, data=data, sample_kwargs=preset_spec(args.preset).sample_kwargs)
    with torch.no_grad():
        base = float(reward(adapter.base_samples).mean())
    out(f"python bench/bench_adaptation_glyphs.py {' '.join(sys.argv[1:])}   (code {code_version()})")
    out(f"preset {args.preset}; config: {cfg}; loadavg at start {os.getloadavg()}")
    c_data, _ = digits(data[0])
    c_base, h_base = digits(adapter.base_samples)
    out(
        f"reward {reward.formula}, lambda = {args.lam}: data mean {float(r.mean()):.3f} (std {float(r.std()):.3f}), "
        f"tilted data (the target) {target:.3f}; base model samples {base:.3f}"
    )
    out(
        f"confident digits (classifier max p > 0.9): data {c_data:.0%}; base model (null label, no CFG) {c_base:.0%} {h_base}"
    )
    out(f"{'step':>5} {'seconds':>8} {'reward':>8} {'gain %':>7} {'digits':>7}  histogram 0..9")
    for ev in adapter.run(args.steps):
        if ev.step % args.eval_every == 0 or ev.step == 1:
            c, h = digits(ev.samples)
            out(
                f"{ev.step:5d} {time.time() - t0:8.1f} {ev.reward_mean:8.3f} {100 * (ev.reward_mean - base) / (target - base):7.1f} "
                f"{100 * c:6.0f}%  {h}"
            )
    out(f"done in {time.time() - t0:.0f} s, loadavg at end {os.getloadavg()}")
    out.write(f"bench_adaptation_{args.preset}{'_' + args.tag if args.tag else ''}")


if __name__ == "__main__":
    main()
