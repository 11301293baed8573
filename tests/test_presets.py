"""The shipped presets load, are small, carry their model cards, and sample sensibly (loose bounds; the real
figures come from bench/bench_presets.py and are in each model card)."""

import math

import pytest
import torch

from adiff.cli.evaluate import evaluate_preset
from adiff.data import make_dataset
from adiff.diffusion.parameterization import DEFAULT_PREDICTION_TYPE
from adiff.eval.metrics import mmd2
from adiff.eval.quality import within_noise
from adiff.nn.config import ModelConfig
from adiff.presets import PRESET_DIR, PresetSpec, list_presets, load_preset, preset_card, preset_path, preset_spec
from adiff.samplers import solvers_for

POINTS = [p for p in list_presets() if preset_spec(p).config["data_shape"] == [2]]


@pytest.mark.parametrize("name", list_presets())
def test_preset_files(name):
    path = preset_path(name)
    assert path.is_file() and path.stat().st_size <= 5 * 2**20, f"{path} missing or over 5 MB"
    card = preset_card(name)
    for key in ("config", "dataset", "steps", "train_seconds", "machine", "quality", "command"):
        assert key in card, f"model card of {name} lacks {key}"
    assert card["command"].startswith(
        (
            f"python -m adiff.train --preset {name}",
            f"torchrun --standalone --nproc_per_node 2 -m adiff.train --preset {name}",
        )
    )
    model = load_preset(name, device="cpu")
    assert model.config["arch"]["data_shape"] == preset_spec(name).config["data_shape"]
    assert load_preset(name, device="cpu") is model, "presets are loaded once and shared"


@pytest.mark.parametrize("name", list_presets())
def test_preset_defaults_are_consistent_with_the_shipped_model_and_its_card(name):
    """The default solver serves the model's process, the step count fits it, the checkpoint is the process and
    prediction type the spec says, and the card's headline quality was measured where the app opens the preset (its
    defaults; class "any" for 2-D presets, with the class-conditional figure beside it, "each" for images)."""
    spec = preset_spec(name)
    model = load_preset(name, device="cpu")
    want = ModelConfig.from_dict(spec.config).diffusion
    assert model.process.name == want.process and model.prediction_type == want.prediction_type
    assert want.prediction_type == spec.config.get("prediction_type", DEFAULT_PREDICTION_TYPE[want.process])
    assert spec.sampler in solvers_for(model.process) and 1 <= spec.num_steps <= model.process.max_steps
    assert spec.sampling == {"sampler": spec.sampler, "num_steps": spec.num_steps, **spec.sample_kwargs}
    q = preset_card(name)["quality"]
    assert q["sampler"] == spec.sampling and q["draws"] == 5, f"the card of {name} predates its defaults"
    if len(model.data_shape) == 1:
        assert q["label"] == "any" and q["n"] == 2000 and len(q["mmd2_draws"]) == 5 and q["mmd2_se"] > 0
        assert q["mmd2"] <= 5e-4
        assert ("conditional_mmd2" in q) == model.is_conditional
        if model.is_conditional:
            assert q["conditional_mmd2"] <= 5e-4 and len(q["conditional_mmd2_draws"]) == 5
    else:
        assert q["label"] == "each" and q["n"] == 500 and q["accuracy"] >= 0.95 and len(q["accuracy_draws"]) == 5


def test_8gaussians_unconditional_samples_are_within_noise_of_the_floor():
    """The app opens 8gaussians on class "any" (and the reverse tab's ideal row is the unconditional mixture): its
    card's unconditional MMD² is within 2 SE of 0 and of the data-vs-data floor (the model trained before issue 21
    measured 1.4e-3 here, with 10% null labels; now 50%)."""
    q = preset_card("8gaussians")["quality"]
    assert q["label"] == "any" and len(q["mmd2_draws"]) == 5 and within_noise(q["mmd2"], q["mmd2_se"])
    assert within_noise(q["mmd2"] - q["floor_mmd2"], math.hypot(q["mmd2_se"], q["floor_mmd2_se"]))


@pytest.mark.parametrize("name", list_presets())
def test_presets_train_within_ten_minutes_on_two_cores(name):
    card = preset_card(name)
    # CPU time where the card has it (the machine is shared, so wall time also counts the neighbours' work).
    assert card.get("train_cpu_seconds", card["train_seconds"]) <= 2 * 600


def test_a_preset_default_must_fit_its_model():
    flow = {"model_type": "unconditional", "embedding_dim": 8, "hidden_dim": 8, "num_layers": 1, "process": "flow"}
    with pytest.raises(
        ValueError,
        match=r"preset 'x': sampler must be one of \['dpmpp_2m', 'euler', 'heun'\] for "
        r"its flow process, got 'ddim'",
    ):
        PresetSpec("x", "moons", flow, "", "ddim", 20)
    vp = {**{k: v for k, v in flow.items() if k != "process"}, "num_diffusion_steps": 100}
    with pytest.raises(ValueError, match=r"preset 'x': num_steps must be an integer in 1..100, got 200"):
        PresetSpec("x", "moons", vp, "", "ddim", 200)


@pytest.mark.slow
@pytest.mark.parametrize("name", POINTS)
def test_point_presets_meet_the_bar_at_their_defaults_now(name):
    """The card's figure, recomputed on other draws (seed 7): MMD^2 at the default solver and steps."""
    q = evaluate_preset(load_preset(name, device="cpu"), preset_spec(name), draws=2, seed=7, progress=None)
    assert q["mmd2"] <= 5e-4 + 2 * max(q["mmd2_se"], 1e-4), q["mmd2_draws"]


@pytest.mark.parametrize("name", POINTS)
def test_point_presets_sample_the_data(name):
    """As the app opens them: class "any" (a conditional preset's null class); with labels drawn like the data too."""
    model = load_preset(name, device="cpu")
    ds = preset_spec(name).dataset
    ref, labels = make_dataset(ds, 1000, seed=99)
    for cond in (None, labels) if model.is_conditional else (None,):
        x, _ = model.generate(1000, condition=cond, seed=0, **preset_spec(name).sampling)
        assert mmd2(x, ref) < 3e-3 < mmd2(torch.randn(1000, 2), ref)


def test_conditional_8gaussians_follows_its_label():
    model = load_preset("8gaussians", device="cpu")
    x, _ = model.generate(80, condition=torch.full((80,), 2), seed=0, sampler="ddim", num_steps=50, cfg_scale=1.0)
    centre = torch.tensor([0.0, 2.0])  # component 2 sits at angle pi/2
    assert (x - centre).norm(dim=1).median() < 0.5


def test_glyph_preset_draws_the_requested_digits():
    from adiff.eval.classifier import load_glyph_classifier

    model = load_preset("glyphs", device="cpu")
    labels = torch.arange(10).repeat(4)
    x, _ = model.generate(40, condition=labels, seed=0, **preset_spec("glyphs").sampling)
    assert x.shape == (40, 1, 16, 16) and float(x.min()) >= -1.01 and float(x.max()) <= 1.01
    acc = (load_glyph_classifier()(x).argmax(1) == labels).float().mean()
    assert acc >= 0.7, f"only {acc:.0%} of the glyphs were read as the requested digit"


def test_preset_dir_holds_only_presets():
    names = {p.stem for p in PRESET_DIR.glob("*.safetensors")}
    assert names == set(list_presets())
    assets = PRESET_DIR.parent
    total = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    assert total <= 25 * 2**20, f"assets/ holds {total / 2**20:.1f} MB (the budget is 25 MB)"
