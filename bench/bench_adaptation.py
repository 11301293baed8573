"""Does adaptation reach the tilted target p(x) exp(lambda r(x)) and STAY there?  The adapted model is sampled
without guidance (lambda = 0, the same seed each time) every --eval-every steps; each row gives the reward gain as a
share of the target's gain, E_{p_lambda}[r] - E_base[r], and MMD^2 to the target.  The summary reports the first
evaluation that reaches 80% of the gain and, from there to the end, the lowest and highest gain and the worst MMD^2
(the issue-16 criterion: gain within 80-120% and MMD^2 <= 5e-3 at every one of those evaluations).

The target: for 8gaussians with r = x coordinate, the exact tilted mixture (GaussianMixture.tilted_linear), 2000
samples; otherwise an independent draw of the dataset (seed 1, --ref-size points) weighted by exp(lambda r)
(adiff.eval.metrics.MMDReference), with its target reward mean from a larger weighted draw (seed 2).  The floor line
is the same distance from a sample of the target itself (exact samples, or 1000 points resampled from a third,
large draw of the data), i.e. what a perfect model would score.

    python bench/bench_adaptation.py --preset 8gaussians --reward x_coordinate --lam 2 --steps 2000
    python bench/bench_adaptation.py --preset moons --reward inside_box --lam 4 --steps 2000
    python bench/bench_adaptation.py --preset 8gaussians --reward x_coordinate --lam -2 --steps 2000 --tag neg
Options: --set key=value ... (AdaptationConfig overrides), --sampling preset|none (the preset's sampling settings,
as the app uses them, or the library's bare DDIM), --reward-params JSON.  Writes bench/results/bench_adaptation_<tag>.txt.
Ctrl-C ends a run early and still writes the summary; --summarise TRANSCRIPT prints the summary of a saved output.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import Transcript, code_version, config_overrides, machine_info  # noqa: E402  (sets the malloc env)

from adiff.data import make_dataset  # noqa: E402
from adiff.data.datasets import gaussian_mixture_for  # noqa: E402
from adiff.eval.metrics import MMDReference  # noqa: E402
from adiff.presets import load_preset, preset_spec  # noqa: E402
from adiff.steering.adaptation import AdaptationConfig, Adapter  # noqa: E402
from adiff.steering.rewards import make_reward  # noqa: E402


def target_reference(preset: str, reward, reward_name: str, params: dict, lam: float, ref_size: int):
    """(MMDReference to p_lambda, E_{p_lambda}[r], floor MMD^2, description, tilt(l) -> (E_{p_l}[r], 1000 samples of p_l))."""
    gm = gaussian_mixture_for(spec_dataset(preset))
    if gm is not None and reward_name == "x_coordinate":
        scale = params.get("scale", 1.0)
        tilt = gm.tilted_linear([scale, 0.0], lam)
        target, _ = tilt.sample(2000, torch.Generator().manual_seed(1))
        other, _ = tilt.sample(1000, torch.Generator().manual_seed(2))
        ref = MMDReference(target)

        def exact_tilt(lam_):
            t = gm.tilted_linear([scale, 0.0], lam_)
            return float(scale * (t.weights * t.means[:, 0]).sum()), t.sample(1000, torch.Generator().manual_seed(5))[0]

        return ref, exact_tilt(lam)[0], ref(other), "exact tilted mixture, 2000 samples", exact_tilt
    name = spec_dataset(preset)

    def weighted(seed, n):
        x, _ = make_dataset(name, n, seed=seed)
        return x, torch.softmax(lam * reward(x).double(), 0)

    y, w = weighted(1, ref_size)
    ref = MMDReference(y, w)
    big, wb = weighted(2, 200_000)
    mean_r = float((wb * reward(big).double()).sum())
    third, _ = make_dataset(name, 200_000, seed=3)
    r3 = reward(third).double()

    def pool_tilt(lam_):
        w3 = torch.softmax(lam_ * r3, 0)
        idx = torch.multinomial(w3.float(), 1000, replacement=True, generator=torch.Generator().manual_seed(4))
        return float((w3 * r3).sum()), third[idx]

    return ref, mean_r, ref(pool_tilt(lam)[1]), f"{ref_size} data points (seed 1) weighted by exp(lambda r)", pool_tilt


def path_floor(ref, tilt, lam: float, base_mean: float, target_mean: float, gain: float) -> float:
    """MMD^2 to the target of the exact tilt p_l that has the given share of the gain (l found by bisection): how
    close any distribution on the way from p to p_lambda along the tilt family can be at that gain."""
    lo, hi = 0.0, lam
    for _ in range(30):
        mid = (lo + hi) / 2
        if (tilt(mid)[0] - base_mean) / (target_mean - base_mean) < gain:
            lo = mid
        else:
            hi = mid
    return ref(tilt((lo + hi) / 2)[1])


def first_at(rows):
    """Indices of the first evaluation with >= 80% of the gain, and of the first on target (80-120%, MMD2 <= 5e-3)."""
    first = next((i for i, (_, g, _) in enumerate(rows) if g >= 0.8), None)
    on = next((i for i, (_, g, m) in enumerate(rows) if 0.8 <= g <= 1.2 and m <= 5e-3), None)
    return first, on


def summary(rows) -> list[str]:
    """The issue-16 criterion over rows [(step, gain, MMD2 to target)]: from the first evaluation at >= 80% of the
    gain (and from the first on target) to the last, the lowest and highest gain and the worst MMD2."""
    if not rows:
        return ["SUMMARY: no evaluation"]
    first, on = first_at(rows)

    def span(i):
        tail = rows[i:]
        lo, hi, worst = min(g for _, g, _ in tail), max(g for _, g, _ in tail), max(m for _, _, m in tail)
        ok = lo >= 0.8 and hi <= 1.2 and worst <= 5e-3
        return (
            f"to step {rows[-1][0]} ({len(tail)} evaluations): gain {lo:.0%}..{hi:.0%} (max {hi:.0%}), worst MMD2 "
            f"{worst:.2e}: {'PASS' if ok else 'FAIL'}"
        )

    if first is None:
        return [
            f"SUMMARY: never reached 80% of the gain in {rows[-1][0]} steps (best {max(g for _, g, _ in rows):.0%}): FAIL"
        ]
    lines = [
        "SUMMARY (criterion: gain within 80-120%, MMD2 to target <= 5e-3)",
        (
            f"  from the first evaluation >= 80% of the gain (step {rows[first][0]}, {rows[first][1]:.0%}, MMD2 "
            f"{rows[first][2]:.2e}) {span(first)}"
        ),
    ]
    if on is not None:
        lines.append(f"  from the first evaluation on target (step {rows[on][0]}) {span(on)}")
    lines.append(f"  last: gain {rows[-1][1]:.0%}, MMD2 {rows[-1][2]:.2e}")
    return lines


def rows_from_transcript(path: str):
    """[(step, gain, MMD2)] from the table of a transcript (this script's output, also one cut short)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) == 8 and f[0].isdigit():
            rows.append((int(f[0]), float(f[4]) / 100, float(f[5])))
    return rows


def spec_dataset(preset: str) -> str:
    return preset_spec(preset).dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="8gaussians")
    ap.add_argument("--reward", default="x_coordinate")
    ap.add_argument("--reward-params", default="{}")
    ap.add_argument("--lam", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sampling", choices=["preset", "none"], default="preset")
    ap.add_argument("--ref-size", type=int, default=8000)
    ap.add_argument("--tag", default=None, help="result file suffix (default: the preset)")
    ap.add_argument("--set", nargs="*", default=[], help="AdaptationConfig overrides, e.g. learning_rate=2e-4")
    ap.add_argument("--summarise", metavar="TRANSCRIPT", help="only print the summary of a transcript (one cut short)")
    args = ap.parse_args()
    if args.summarise:
        print("\n".join(summary(rows_from_transcript(args.summarise))))
        return
    torch.set_num_threads(args.threads)
    out = Transcript()

    params = json.loads(args.reward_params)
    reward = make_reward(args.reward, **params)
    model = load_preset(args.preset, device="cpu").clone(device="cpu")
    sample_kwargs = dict(preset_spec(args.preset).sample_kwargs) if args.sampling == "preset" else {}
    over = config_overrides(AdaptationConfig, args.set)
    cfg = AdaptationConfig(
        **{"guidance_scale": args.lam, "eval_samples": args.eval_samples, "eval_every": args.eval_every, **over}
    )
    ref, target_mean, floor, ref_desc, tilt = target_reference(
        args.preset, reward, args.reward, params, args.lam, args.ref_size
    )
    data = make_dataset(spec_dataset(args.preset), 20_000, seed=0)
    t0 = time.time()
    adapter = Adapter(model, reward, cfg, data=data, sample_kwargs=sample_kwargs)
    base_mean = float(reward(adapter.base_samples).mean())
    out(f"python bench/bench_adaptation.py {' '.join(sys.argv[1:])}   (code {code_version()})")
    out(f"config: {cfg}")
    out(
        f"sampling: DDIM-{cfg.sample_steps} {sample_kwargs or '(no clip)'}; machine: {machine_info(model.device)}; loadavg at start {os.getloadavg()}"
    )
    out(
        f"{args.preset}, reward {reward.formula}, lambda = {args.lam}: base mean reward {base_mean:.3f}, target mean reward "
        f"{target_mean:.3f}; target: {ref_desc}; floor (1000 samples of the target vs the target) MMD2 {floor:.1e}"
    )
    out(f"base model MMD2 to target {ref(adapter.base_samples):.2e}")
    out(
        f"{'step':>5} {'queries':>8} {'seconds':>8} {'reward':>8} {'gain %':>7} {'MMD2 target':>12} {'MMD2 data':>10} {'loss':>7}"
    )
    rows = []
    try:  # Ctrl-C stops the run and still writes the summary and the result file
        for ev in adapter.run(args.steps):
            if ev.step % args.eval_every == 0 or ev.step == 1:
                gain = (ev.reward_mean - base_mean) / (target_mean - base_mean)
                mt = ref(ev.samples)
                rows.append((ev.step, gain, mt))
                out(
                    f"{ev.step:5d} {ev.reward_queries:8d} {time.time() - t0:8.1f} {ev.reward_mean:8.3f} {100 * gain:7.1f} "
                    f"{mt:12.2e} {ev.distance_to_data:10.2e} {ev.loss:7.4f}"
                )
            if time.time() - t0 > args.minutes * 60:
                out(f"stopped at the time limit ({args.minutes} min)")
                break
    except KeyboardInterrupt:
        out(f"stopped by hand after step {rows[-1][0] if rows else 0}")
    for line in summary(rows):
        out(line)
    if first_at(rows)[0] is not None:
        g0 = rows[first_at(rows)[0]][1]
        out(
            f"  (the exact tilt p_l with {g0:.0%} of the gain is itself at MMD2 "
            f"{path_floor(ref, tilt, args.lam, base_mean, target_mean, g0):.2e} from the target)"
        )
    out(f"{time.time() - t0:.0f} s, loadavg at end {os.getloadavg()}")
    out.write(f"bench_adaptation_{args.tag or args.preset}")


if __name__ == "__main__":
    main()
