"""Callbacks and helpers without a server: input checks, conversions, session store, GIF, schedules and forward."""

import os

import gradio as gr
import pytest
import torch
from PIL import Image

from adiff.data import gaussian_mixture_for
from adiff.diffusion import Predictor
from adiff.diffusion.processes import make_process
from adiff.diffusion.schedules import make_schedule
from components import arrays, choices, curves, fields, rewards, trajectory_view
from components.context import AppContext, ModelInfo
from components.forward import handlers as forward_handlers
from components.gif import trajectory_gif
from components.reverse import view as reverse_view
from components.schedules import handlers as schedules
from components.schedules import view as schedules_view
from components.state import Session, SessionStore, return_free_memory

# ---------------------------------------------------------------------------------------------- validation


def forward_data(ctx, *args):
    """/forward's data for these raw inputs, without a server: (figure data, curves, summary)."""
    f = forward_handlers.forward_data(ctx, forward_handlers.ForwardRequest.of(*args))
    return f.data, f.curve, f.summary


def schedule_curves(*args):
    """/schedule_curves' answer for these raw inputs, without a server: (figure, warnings, summary)."""
    return schedules_view.outputs(schedules.curves(schedules.CurvesRequest.of(*args)))


def test_as_int_names_the_field():
    assert fields.as_int(3.0, "num_steps", 1, 10) == 3
    assert fields.as_int("4", "num_steps", 1, 10) == 4
    for bad in (0, 11, 2.5, None, "x", True, float("nan")):
        with pytest.raises(gr.Error, match="num_steps"):
            fields.as_int(bad, "num_steps", 1, 10)


def test_as_float_text_choice_bool():
    assert fields.as_float("0.5", "eta", 0, 1) == 0.5
    with pytest.raises(gr.Error, match="eta: must be in"):
        fields.as_float(2, "eta", 0, 1)
    with pytest.raises(gr.Error, match="eta"):
        fields.as_float(float("inf"), "eta", 0, 1)
    with pytest.raises(gr.Error, match="sampler: must be one of"):
        fields.as_choice("euler", "sampler", ["ddpm", "ddim"])
    with pytest.raises(gr.Error, match="expression: is too long"):
        fields.as_text("x" * 300, "expression", 200)
    with pytest.raises(gr.Error, match="guided_sampling"):
        fields.as_bool("yes", "guided_sampling")


def test_user_errors_wraps_plain_and_generator_callbacks():
    @fields.user_errors
    def bad_value():
        raise ValueError("num_samples must be positive")

    @fields.user_errors
    def crash():
        raise RuntimeError("boom")

    @fields.user_errors
    def stream():
        yield 1
        raise ValueError("eta must be in [0, 1]")

    with pytest.raises(gr.Error, match="num_samples must be positive"):
        bad_value()
    with pytest.raises(gr.Error, match="crash failed unexpectedly .RuntimeError: boom"):
        crash()
    it = stream()
    assert next(it) == 1
    with pytest.raises(gr.Error, match="eta must be"):
        next(it)


def test_every_event_parses_raw_values_and_no_gradio_internals_are_used():
    """Field-named errors come from each endpoint's parse() on the raw values (preprocess=False), through Gradio's
    public API only: no event runs Gradio's anonymous component checks, and components/ never imports or patches a
    gradio submodule (a minor Gradio release could change it)."""
    import ast
    from pathlib import Path

    import app

    demo = app.build_app(device="cpu")
    try:
        with_inputs = [f for f in demo.fns.values() if f.fn is not None and f.inputs]
        assert len(with_inputs) > 20
        assert [f.name for f in with_inputs if f.preprocess] == []
    finally:
        demo.adiff_context.store.close_all()
    root = Path(app.__file__).parent
    for path in [root / "app.py", *(root / "components").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gradio"):
                assert node.module == "gradio", f"{path}: from {node.module} import ..."
            if isinstance(node, ast.Import):
                assert all(a.name == "gradio" or not a.name.startswith("gradio") for a in node.names), path

    assert not list(root.glob("components/**/*.pyi")), "the repository changed at import time"


# ---------------------------------------------------------------------------------------------- conversions
def test_points_and_tiles():
    p = arrays.points(torch.tensor([[1.0, 2.0], [float("nan"), 3.0]]))
    assert p == {"x": [1.0, None], "y": [2.0, 3.0]}
    grid = arrays.tile_images(torch.zeros(5, 1, 4, 4), cols=3, min_size=1)
    assert len(grid) == 2 * 4 + 1 and len(grid[0]) == 3 * 4 + 2
    assert grid[4][0] is None and grid[0][0] == 0.0
    assert grid[5][4 * 2 + 2] is None  # the empty sixth cell
    # 8x8 digits are enlarged x2 by repeating pixels (nearest neighbour); 16x16 glyphs stay as they are.
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    big = arrays.tile_images(torch.cat([img, img]), cols=2)
    assert len(big) == 16 and len(big[0]) == 2 * 16 + 1
    assert big[0][0] == big[1][1] == 0.0 and big[0][2] == 1.0 and big[15][15] == 63.0 and big[0][16] is None
    assert len(arrays.tile_images(torch.zeros(1, 1, 16, 16))) == 16


def test_score_field_of_a_gaussian():
    """For x0 ~ N(0, I) the score of q(x_t) is -x exactly, so the field must be -x on the grid."""
    proc = make_process("vp", schedule="linear", num_steps=100)
    eps_fn = lambda x, t: x * proc.coefficients(t)[1]  # eps* = sigma_t x  (since var(x_t) = 1)
    f = arrays.score_field(eps_fn, proc, 50, n=5)
    assert len(f["x"]) == 25
    for x, y, u, v in zip(f["x"], f["y"], f["u"], f["v"]):
        assert u == pytest.approx(-x, abs=1e-3) and v == pytest.approx(-y, abs=1e-3)


def test_schedule_curve_subsamples_and_keeps_ends():
    sch = make_schedule("cosine", 5000)
    c = curves.schedule_curve(sch, "cosine", max_points=500)
    assert c["t"][0] == 1 and c["t"][-1] == 5000 and len(c["t"]) <= 500
    assert c["abar"][-1] == pytest.approx(float(sch.alphas_cumprod[-1]), abs=1e-6)
    at = curves.curve_at(c, sch, 0)
    assert at["abar_at"] == 1.0 and at["noise_at"] == 0.0 and at["t"][0] == 0


def test_build_reward_checks_kind_params_and_expressions():
    r = rewards.build_reward("x_coordinate", "", '{"scale": 2}', "points")
    assert r(torch.tensor([[1.0, 0.0]])).item() == 2.0
    assert rewards.build_reward("none", "", "", "images", allow_none=True) is None
    e = rewards.build_reward("expression", "x + y", "", "points")
    assert e(torch.tensor([[1.0, 2.0]])).item() == pytest.approx(3.0)
    with pytest.raises(gr.Error, match="reward: 'brightness' is a reward for images"):
        rewards.build_reward("brightness", "", "", "points")
    with pytest.raises(gr.Error, match="reward_params: .*JSON"):
        rewards.build_reward("mode", "", "{k: 3", "points")
    with pytest.raises(gr.Error, match="reward_params: .*k must be an integer in 0..7"):
        rewards.build_reward("mode", "", '{"k": 9}', "points")
    with pytest.raises(gr.Error, match="expression: .*not allowed"):
        rewards.build_reward("expression", "__import__('os')", "", "points")
    with pytest.raises(gr.Error, match="expression: is too long"):
        rewards.build_reward("expression", "x+" * 200, "", "points")
    with pytest.raises(gr.Error, match="reward: an expression reward is for 2-D points"):
        rewards.build_reward("expression", "x", "", "images")
    with pytest.raises(gr.Error, match="reward: must be one of"):
        rewards.build_reward("nope", "", "", "points")


def test_adaptation_reward_picker_follows_the_model_kind():
    """The reward stays chosen when the new model offers it, else the kind's first; the expression box shows only for
    "expression" and the parameters box only for a built-in (an image model used to inherit the expression box)."""
    from components.adaptation.layout import REWARD_DEFAULTS
    from components.reward_picker import RewardPicker

    with gr.Blocks():
        picker = RewardPicker.build("t", offer_none=False, defaults=REWARD_DEFAULTS)
    kind = {k: ModelInfo("m", None, k, False, None, {}, "") for k in ("points", "images")}
    up = picker.updates_for(None, kind["points"], "expression")
    assert up[picker.dropdown]["value"] == "expression" and up[picker.dropdown]["choices"][-1] == "expression"
    assert up[picker.expression]["visible"] and not up[picker.params]["visible"]
    assert up[picker.help] == rewards.reward_help("expression")
    up = picker.updates_for(None, kind["images"], "expression")
    first = rewards.reward_choices("images")[0]
    assert up[picker.dropdown]["value"] == first and "expression" not in up[picker.dropdown]["choices"]
    assert not up[picker.expression]["visible"] and up[picker.params]["visible"]
    assert up[picker.help] == rewards.reward_help(first) and first in up[picker.help]
    assert picker.updates_for(None, kind["points"])[picker.dropdown]["value"] == "x_coordinate"


def test_labels():
    cond = ModelInfo("8gaussians", "8gaussians", "points", True, 8, {}, "")
    unc = ModelInfo("moons", "moons", "points", False, None, {}, "")
    assert choices.parse_label("any", cond) is None and choices.parse_label("3", cond) == 3
    assert choices.parse_label("each", cond) == "each"
    assert choices.condition_for("each", 10, 8).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    with pytest.raises(gr.Error, match="class_label: .*0..7"):
        choices.parse_label("8", cond)
    with pytest.raises(gr.Error, match="class_label: this model is unconditional"):
        choices.parse_label("1", unc)
    assert choices.label_choices(unc) == ["any"]


# ---------------------------------------------------------------------------------------------- sessions
def test_session_store_is_bounded_and_releases_sessions():
    class Req:
        def __init__(self, h):
            self.session_hash = h

    store = SessionStore(max_sessions=3)
    a = store.get(Req("a"))
    assert store.get(Req("a")) is a
    wd = a.workdir
    assert wd.is_dir()
    for k in "bcd":
        store.get(Req(k))
    assert len(store) == 3 and "a" not in store.keys()  # the least recently used went first
    assert not wd.exists()  # and took its files with it
    store.drop_request(Req("d"))
    assert "d" not in store.keys()
    # a caller without a session hash gets a session of its own, never a shared one (issue 14, finding 6)
    x, y = store.get(None), store.get(None)
    assert x is not y and x.key != y.key and x.key.startswith("anonymous-")
    assert len(store) == 3  # still bounded


def test_freed_memory_goes_back_to_the_os():
    """What a released session freed (many mid-sized blocks, a few kept) stays in glibc's heap until trimmed."""
    from components import state
    from tests.app_helpers import memory_mb, require

    require(state._MALLOC_TRIM is not None, "not glibc: there is no malloc_trim, and nothing to trim")
    blobs = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]  # about 100 MB of malloc'd blocks
    keep = blobs[::200]  # noqa: F841 - a few survivors pin the heap, as a live session's objects do
    del blobs
    before = memory_mb(os.getpid())["VmRSS"]
    return_free_memory()
    assert memory_mb(os.getpid())["VmRSS"] < before - 50


def test_runs_supersede_each_other():
    s = Session("x")
    r1 = s.new_run("adapt")
    assert s.is_current("adapt", r1)
    r2 = s.new_run("adapt")
    assert not s.is_current("adapt", r1) and s.is_current("adapt", r2)
    s.stop_runs("adapt")
    assert not s.is_current("adapt", r2)


# ---------------------------------------------------------------------------------------------- tabs' callbacks
def test_parse_custom_values_names_the_entry():
    assert schedules.parse_custom_values("0.1, 0.5 0.9") == [0.1, 0.5, 0.9]
    with pytest.raises(gr.Error, match=r"custom_values: entry 1 = 'abc' is not a number"):
        schedules.parse_custom_values("0.1, abc")
    with pytest.raises(gr.Error, match=r"custom_values\[2\] = 0.3 is not greater"):
        schedules.parse_custom_values("0.1, 0.5, 0.3")
    with pytest.raises(gr.Error, match=r"custom_values\[1\] = 1.5 is outside"):
        schedules.parse_custom_values("0.1, 1.5")
    assert schedules.check_custom_values("0.1, 0.2").startswith("✓")
    assert schedules.check_custom_values("").startswith("✗ custom_values")


def test_schedule_curves_warnings():
    fig, md, summary = schedule_curves(["linear", "cosine", "custom"], 20, "0.01, 0.5, 0.9")
    assert set(summary) == {"linear", "cosine", "custom"}
    assert "only T = 20 steps" in md  # too few steps
    assert "terminal SNR" in md  # the custom schedule ends at sigma = 0.9
    assert summary["cosine"]["max_beta"] == pytest.approx(0.999)
    assert len(fig.data) == 12
    with pytest.raises(gr.Error, match="schedules: must be among"):
        schedule_curves(["quadratic"], 100, "")
    with pytest.raises(gr.Error, match="num_steps: must be in 2..10000"):
        schedule_curves(["linear"], 20000, "")


def test_forward_data_points_images_and_exact_density():
    ctx = AppContext(device="cpu")
    data, curve, summary = forward_data(ctx, "8gaussians", "linear", 1000, 0, 300, 0)
    assert data["x_t"] == data["data"]  # t = 0 is the data itself
    assert "density" in data and summary["sigma_t"] == 0.0
    data, curve, summary = forward_data(ctx, "moons", "cosine", 1000, 1000, 2000, 1)
    assert abs(summary["x_t_std"] - 1.0) < 0.05  # q(x_T) is N(0, I)
    assert curve["abar_at"] < 1e-3
    data, _, _ = forward_data(ctx, "glyphs", "linear", 100, 37, 2, 0)
    assert [c["t"] for c in data["columns"] if c["selected"]] == [37]
    with pytest.raises(gr.Error, match="t: must be in 0..100"):
        forward_data(ctx, "moons", "linear", 100, 101, 10, 0)
    with pytest.raises(gr.Error, match="num_points: must be in 1..8"):
        forward_data(ctx, "glyphs", "linear", 100, 1, 9, 0)


def test_ideal_mixture_and_frame_data_with_the_exact_denoiser():
    info = ModelInfo("8gaussians", "8gaussians", "points", True, 8, {}, "")
    full = trajectory_view.ideal_mixture(info, None)
    assert full.num_components == 8
    one = trajectory_view.ideal_mixture(info, 3)
    assert one.num_components == 1 and torch.allclose(one.means[0], gaussian_mixture_for("8gaussians").means[3])
    assert trajectory_view.ideal_mixture(info, "each") is None
    assert trajectory_view.ideal_mixture(ModelInfo("moons", "moons", "points", False, None, {}, ""), None) is None

    class Ideal:  # a model whose noise predictor is the exact one, so "learned" and "ideal" must agree
        process = make_process("vp", schedule="linear", num_steps=100)
        device = torch.device("cpu")
        is_conditional = False
        prediction_type = "epsilon"

        def predictor(self, label, n, cfg_scale=None, network=None):
            return Predictor(full.model_fn(self.process, "epsilon"), self.process, "epsilon")

    x = torch.randn(50, 2)
    eps = full.model_fn(Ideal.process, "epsilon")(x, 40)
    frame = reverse_view.frame_data(Ideal(), "points", 40, x, x, eps, ideal=full)
    assert frame["ideal"]["eps"]["x"] == pytest.approx(frame["eps"]["x"], abs=1e-3)
    assert frame["ideal"]["score"]["u"] == pytest.approx(frame["score"]["u"], abs=1e-3)


def test_gif_has_one_frame_per_kept_step(tmp_path):
    from adiff.samplers import Trajectory

    K, B = 4, 30
    traj = Trajectory(
        [30, 20, 10, 0],
        torch.randn(K, B, 2),
        torch.randn(K, B, 2),
        torch.randn(K, B, 2),
        torch.linspace(1, 0, K),
        [None] * K,
    )
    path = trajectory_gif(traj, "points", tmp_path / "t.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == K and im.info.get("loop") == 0
    imgs = Trajectory(
        [5, 0],
        torch.rand(2, 4, 1, 16, 16) * 2 - 1,
        torch.zeros(2, 4, 1, 16, 16),
        torch.zeros(2, 4, 1, 16, 16),
        torch.tensor([0.5, 0.0]),
        [None, None],
    )
    with Image.open(trajectory_gif(imgs, "images", tmp_path / "i.gif")) as im:
        assert im.n_frames == 2


def test_app_context_model_errors_name_the_field():
    ctx = AppContext(device="cpu")
    with pytest.raises(gr.Error, match="preset: 'my model' needs a model"):
        ctx.model("my model", Session("x"))
    with pytest.raises(gr.Error, match="preset: must be one of"):
        ctx.model("unicorns", Session("x"))


def test_build_app_rejects_bad_settings():
    import app

    with pytest.raises(ValueError, match="device"):
        app.build_app(device="tpu")
    with pytest.raises(ValueError, match="max_heavy_jobs"):
        app.build_app(device="cpu", max_heavy_jobs=0)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            app.parse_args(["--device", "cuda"])
    with pytest.raises(SystemExit):
        app.parse_args(["--max-heavy-jobs", "0"])
    args = app.parse_args(["--host", "0.0.0.0", "--port", "7999", "--share", "--root-path", "/adiff"])
    assert (args.host, args.port, args.share, args.root_path, args.device) == ("0.0.0.0", 7999, True, "/adiff", "auto")
