"""The shipped presets load, are small, carry their model cards, and sample sensibly (loose bounds; the real
figures come from bench/bench_presets.py and are in each model card)."""
import pytest
import torch

from adiff.data import make_dataset
from adiff.eval.metrics import mmd2
from adiff.presets import PRESET_DIR, list_presets, load_preset, preset_card, preset_path, preset_spec

POINTS = [p for p in list_presets() if preset_spec(p).config["data_shape"] == [2]]


@pytest.mark.parametrize("name", list_presets())
def test_preset_files(name):
    path = preset_path(name)
    assert path.is_file() and path.stat().st_size <= 5 * 2**20, f"{path} missing or over 5 MB"
    card = preset_card(name)
    for key in ("config", "dataset", "steps", "train_seconds", "machine", "quality", "command"):
        assert key in card, f"model card of {name} lacks {key}"
    assert card["command"].startswith((f"python -m adiff.train --preset {name}",
                                       f"torchrun --standalone --nproc_per_node 2 -m adiff.train --preset {name}"))
    model = load_preset(name, device="cpu")
    assert model.config["arch"]["data_shape"] == preset_spec(name).config["data_shape"]
    assert load_preset(name, device="cpu") is model, "presets are loaded once and shared"


@pytest.mark.parametrize("name", POINTS)
def test_point_presets_sample_the_data(name):
    model = load_preset(name, device="cpu")
    ds = preset_spec(name).dataset
    ref, labels = make_dataset(ds, 1000, seed=99)
    cond = labels if model.is_conditional else None
    x, _ = model.generate(1000, condition=cond, seed=0, sampler="ddim", num_steps=50)
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
    x, _ = model.generate(40, condition=labels, seed=0, sampler="ddim", num_steps=50, **preset_spec("glyphs").sample_kwargs)
    assert x.shape == (40, 1, 16, 16) and float(x.min()) >= -1.01 and float(x.max()) <= 1.01
    acc = (load_glyph_classifier()(x).argmax(1) == labels).float().mean()
    assert acc >= 0.7, f"only {acc:.0%} of the glyphs were read as the requested digit"


def test_preset_dir_holds_only_presets():
    names = {p.stem for p in PRESET_DIR.glob("*.safetensors")}
    assert names == set(list_presets())
