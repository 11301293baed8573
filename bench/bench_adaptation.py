"""Adaptation on 8 gaussians with r = x-coordinate, lambda = 2: does the adapted model, sampled WITHOUT guidance,
reach the tilted target p(x) exp(2 x)?  Prints the reward-versus-reward-queries curve and the final figures.

    python bench/bench_adaptation.py [--steps 600] [--minutes 10]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adiff.steering.adaptation import Adapter, AdaptationConfig  # noqa: E402
from adiff.data import eight_gaussians_mixture, make_dataset  # noqa: E402
from adiff.eval.metrics import mmd2  # noqa: E402
from adiff.presets import load_preset  # noqa: E402
from adiff.steering.rewards import make_reward  # noqa: E402
from adiff.cli.train import machine_info  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--lam", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], help="AdaptationConfig overrides, e.g. learning_rate=2e-4")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lam = args.lam
    model = load_preset("8gaussians", device="cpu").clone(device="cpu")
    reward = make_reward("x_coordinate")
    g = eight_gaussians_mixture()
    tilt = g.tilted_linear([1.0, 0.0], lam)
    target, _ = tilt.sample(2000, torch.Generator().manual_seed(1))
    target_mean = float((tilt.weights * tilt.means[:, 0]).sum())
    data = make_dataset("8gaussians", 20_000, seed=0)
    over = {k: type(getattr(AdaptationConfig, k))(v) for k, v in (kv.split("=") for kv in args.set)}
    cfg = AdaptationConfig(**{"guidance_scale": lam, "eval_samples": 1000, "eval_every": 25, **over})
    print(f"config: {cfg}")
    t0 = time.time()
    adapter = Adapter(model, reward, cfg, data=data)
    base_mean = float(reward(adapter.base_samples).mean())
    print(f"machine: {machine_info(model.device)}")
    print(f"base mean reward {base_mean:.3f}; tilted target mean reward {target_mean:.3f} (lambda = {lam})")
    print(f"{'step':>5} {'queries':>8} {'seconds':>8} {'reward':>8} {'gain %':>7} {'MMD2 target':>12} {'MMD2 data':>10} {'loss':>7}")
    ev = None
    for ev in adapter.run(args.steps):
        if ev.step % 25 == 0 or ev.step == 1:
            gain = (ev.reward_mean - base_mean) / (target_mean - base_mean) * 100
            mt = mmd2(ev.samples, target)
            print(f"{ev.step:5d} {ev.reward_queries:8d} {time.time() - t0:8.1f} {ev.reward_mean:8.3f} {gain:7.1f} {mt:12.2e} {ev.distance_to_data:10.2e} {ev.loss:7.4f}", flush=True)
        if time.time() - t0 > args.minutes * 60:
            break
    final = adapter._evaluate_samples()
    r = float(reward(final).mean())
    gain = (r - base_mean) / (target_mean - base_mean)
    print(f"FINAL after {ev.step} steps, {time.time() - t0:.0f} s: mean reward {r:.3f} = {gain:.0%} of the target's gain "
          f"(target >= 80%), MMD2 to target {mmd2(final, target):.2e} (target <= 5e-3)")


if __name__ == "__main__":
    main()
