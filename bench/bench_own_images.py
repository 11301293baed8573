"""Own images that train (issue 21, item 7): which Train-tab settings turn a small upload into recognisable samples.

    python bench/bench_own_images.py [--candidates defaults,proposed,...] [--seeds 1 2 3] [--image-sizes 16]

The upload is tests/own_images.py's zip: 30 PNGs in two class folders (15 bars, 15 rings) with varied position,
size, stroke, tilt, gray levels and noise.  For each candidate and seed it goes through the tab's own handlers as a
visitor does: /use_images (own_data.use_images) at the image size, /train (handlers.TrainRequest.parse, then
handlers.train to its last message, previews included), conditional on the folders; then 'my model' samples
``--samples`` images for class 'each' (0, 1, 0, 1, ...) with the solver it starts with in the other tabs
(components.choices.default_solver) at the CFG scale(s) asked for, and two independent checks read each sample's
class: the nearest class mean of the upload (pixel space) and a small CNN trained on the upload with shifts, flips
and noise.  "roughness" is the mean absolute difference of neighbouring pixels of the samples over the upload's (a
speckled blob is rougher than the shapes: well above 1).  Figures: mean ± standard error over the
seeds, and the CPU seconds of the training call (time.process_time of this one-thread process; the wall time is
printed too, with the load average, as the two cores are shared).  The report goes to bench/results/bench_own_images.txt.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, base_parser, machine_info, setup

sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from components.choices import default_solver  # noqa: E402
from components.context import MY_MODEL, AppContext  # noqa: E402
from components.train import handlers  # noqa: E402
from components.train.own_data import ImagesRequest, use_images  # noqa: E402
from components.train.shared import OWN_IMAGES, state_of  # noqa: E402
from tests.own_images import classifier_rate, nearest_mean_rate, shape_classifier, shapes_zip  # noqa: E402

# name -> the /train fields that differ from the widgets' defaults (linear, T = 1000, small, 1500 steps, batch 128,
# lr 1e-3, epsilon; conditional); "config": model config fields set on top of the tab's (e.g. the patch size).
# "b30": batch 30, what the 30-image upload trained on before train_progressive drew full batches from a set smaller
# than the batch.  The exploration (one seed each, bench/results/bench_own_images.txt) ran the rest; the last two
# are the candidates for "my images" (components/train/follow.py: OWN_IMAGES_RECIPE).
BASE = dict(schedule="linear", T=1000, size="small", steps=1500, bs=128, lr=1e-3, process="vp", prediction="epsilon")
CANDIDATES = {
    "defaults": {},
    "b30": dict(bs=30),
    "b30_cosine": dict(bs=30, schedule="cosine"),
    "b30_lr2e-3": dict(bs=30, lr=2e-3),
    "b30_patch2": dict(bs=30, config={"patch_size": 2}),
    "b30_x0": dict(bs=30, prediction="sample"),
    "b30_v": dict(bs=30, prediction="v_prediction"),
    "b30_v_cosine": dict(bs=30, prediction="v_prediction", schedule="cosine"),
    "b30_flow": dict(bs=30, process="flow", prediction="velocity"),
    "flow": dict(process="flow", prediction="velocity"),
    "v": dict(prediction="v_prediction"),
    "v_cosine": dict(prediction="v_prediction", schedule="cosine"),
}


def _train(ctx: AppContext, session, settings: dict, seed: int) -> tuple[float, float, float]:
    """Train "my model" through the tab's handler; (CPU s, wall s, last smoothed loss)."""
    s = {**BASE, **settings}
    req = handlers.TrainRequest.parse(
        ctx,
        session,
        OWN_IMAGES,
        s["schedule"],
        s["T"],
        s["size"],
        True,
        s["steps"],
        s["bs"],
        s["lr"],
        seed,
        s["process"],
        s["prediction"],
    )
    c0, t0, last = time.process_time(), time.time(), None
    plain = handlers.model_config
    handlers.model_config = lambda *a, **k: {**plain(*a, **k), **s.get("config", {})}
    try:
        for last in handlers.train(ctx, session, req):
            pass
    finally:
        handlers.model_config = plain
    return time.process_time() - c0, time.time() - t0, float(last.status["loss_smooth"])


def _roughness(x: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring pixels (total variation per pixel pair) of images [n, 1, S, S]."""
    return float(
        torch.cat([(x[..., 1:, :] - x[..., :-1, :]).flatten(1), (x[..., 1:] - x[..., :-1]).flatten(1)], 1).abs().mean()
    )


def _sample(ctx, session, n: int, seed: int, cfg: float) -> tuple[torch.Tensor, torch.Tensor, str]:
    model, info = ctx.model(MY_MODEL, session)
    sampler, steps = default_solver(model, info)
    labels = torch.arange(n) % model.num_classes  # class "each"
    with torch.no_grad():
        x, _ = model.generate(
            n,
            condition=labels,
            seed=seed,
            sampler=sampler,
            num_steps=steps,
            cfg_scale=cfg,
            clip_x0=info.sample_kwargs.get("clip_x0"),
        )
    return x.float(), labels, f"{sampler} {steps}"


def _mean_se(v: list[float]) -> str:
    m = statistics.fmean(v)
    se = statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else float("nan")
    return f"{100 * m:5.1f} ± {100 * se:4.1f}"


def _save_grid(x: torch.Tensor, path) -> None:
    """Samples [n, 1, S, S] in [-1, 1] as a PNG grid (8 a row, dark ink as in the upload), enlarged 4 times."""
    from PIL import Image

    from components.arrays import tile_array

    z = torch.as_tensor(tile_array(x[:32], cols=8)).float().nan_to_num(-1.0)  # the gaps as background
    im = ((1 - (z.clamp(-1, 1) + 1) / 2) * 255).to(torch.uint8).numpy()
    Image.fromarray(im).resize((im.shape[1] * 4, im.shape[0] * 4), Image.NEAREST).save(path)


def run_candidate(ctx, name: str, size: int, seeds, n: int, cfgs, grids=None) -> None:
    rows = {cfg: {"mean": [], "cnn": [], "rough": []} for cfg in cfgs}
    cpu, wall, losses, solver = [], [], [], ""
    for seed in seeds:
        session = ctx.store.get(None)
        upload = Path(tempfile.mkdtemp()) / "shapes.zip"  # an upload arrives as a file on the server
        upload.write_bytes(shapes_zip())
        use_images(ctx, session, ImagesRequest([str(upload)], size))
        own = state_of(session).own[OWN_IMAGES]
        c, w, loss = _train(ctx, session, CANDIDATES[name], seed)
        cpu.append(c), wall.append(w), losses.append(loss)
        net = shape_classifier(own.x, own.labels)
        for cfg in cfgs:
            x, labels, solver = _sample(ctx, session, n, 1000 + seed, cfg)
            rows[cfg]["mean"].append(nearest_mean_rate(x, labels, own.x, own.labels))
            rows[cfg]["cnn"].append(classifier_rate(x, labels, net))
            rows[cfg]["rough"].append(_roughness(x) / _roughness(own.x))
            if grids and seed == seeds[0]:
                _save_grid(x, f"{grids}/{name}_{size}px_cfg{cfg}.png")
        ctx.store.drop(session.key)
    head = f"{name:10s} {size:2d}px  {{{', '.join(f'{k}={v}' for k, v in CANDIDATES[name].items())}}}"
    print(
        f"{head}  cpu {statistics.fmean(cpu):5.1f} s (wall {statistics.fmean(wall):5.1f} s)  "
        f"loss {statistics.fmean(losses):.3f}  [{solver}]"
    )
    for cfg, r in rows.items():
        print(
            f"    cfg {cfg:3.1f}: nearest mean {_mean_se(r['mean'])} %   cnn {_mean_se(r['cnn'])} %   "
            f"roughness {statistics.fmean(r['rough']):.2f} x the upload's"
        )
    sys.stdout.flush()


def main() -> None:
    ap = base_parser(__doc__, "bench_own_images")
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated names of CANDIDATES")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--image-sizes", type=int, nargs="+", default=[16])
    ap.add_argument("--samples", type=int, default=64, help="samples per model (class 'each')")
    ap.add_argument("--cfg", type=float, nargs="+", default=[1.0], help="CFG scales to sample at")
    ap.add_argument("--grids", default=None, help="a folder for PNG grids of the first seed's samples")
    args = ap.parse_args()
    setup(args)
    print("machine:", machine_info())
    print(f"seeds {args.seeds}, {args.samples} samples each, base settings {BASE}")
    ctx = AppContext(device="cpu")
    for size in args.image_sizes:
        for name in args.candidates.split(","):
            run_candidate(ctx, name, size, args.seeds, args.samples, args.cfg, args.grids)
    with open("/proc/loadavg") as f:
        print("load average at the end:", f.read().split()[:3])


if __name__ == "__main__":
    main()
