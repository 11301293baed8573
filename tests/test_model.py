"""DiffusionModel: denoisers for any data shape, training, generation, checkpoints."""
import json

import pytest
import torch

from adiff import DiffusionModel
from adiff.nn.checkpoints import CheckpointError
from adiff.data import make_dataset
from adiff.eval.metrics import mmd2, sliced_wasserstein


def cfg(**kw):
    base = {"model_type": "unconditional", "embedding_dim": 32, "hidden_dim": 32, "num_layers": 2, "num_heads": 4,
            "num_diffusion_steps": 50, "data_shape": [2], "device": "cpu"}
    base.update(kw)
    return base


@pytest.mark.parametrize("shape,ptype", [([2], "unconditional"), ([6], "conditional"), ([1, 8, 8], "unconditional"), ([3, 4, 4], "conditional")])
def test_train_step_and_generate_any_shape(shape, ptype):
    extra = {"num_classes": 3} if ptype == "conditional" else {}
    m = DiffusionModel(cfg(data_shape=shape, model_type=ptype, **extra))
    x = torch.randn(16, *shape)
    labels = torch.randint(0, 3, (16,)) if extra else None
    losses = [m.train_step(x, labels) for _ in range(3)]
    assert all(l > 0 for l in losses) and m.training_step == 3
    out, traj = m.generate(4, condition=1 if extra else None, keep_every=10)
    assert out.shape == (4, *shape) and torch.isfinite(out).all()
    assert traj.x.shape == (len(traj.timesteps), 4, *shape) and traj.timesteps[-1] == 0


def test_denoiser_output_depends_on_time_and_condition():
    m = DiffusionModel(cfg(model_type="conditional", num_classes=4))
    for p in m.denoiser.parameters():  # the zero-initialised output would hide any dependence
        torch.nn.init.normal_(p, std=0.3)
    x, t = torch.randn(8, 2), torch.full((8,), 0.5)
    net = m.denoiser.eval()
    a = net(x, t, torch.zeros(8, dtype=torch.long))
    assert not torch.allclose(a, net(x, t, torch.full((8,), 2)))
    assert not torch.allclose(a, net(x, t, torch.full((8,), 4)))  # 4 = the null condition
    assert not torch.allclose(a, net(x, torch.full((8,), 0.1), torch.zeros(8, dtype=torch.long)))
    with pytest.raises(ValueError, match="labels must be in 0..3"):
        net(x, t, torch.full((8,), 5))


def test_patching_round_trip():
    m = DiffusionModel(cfg(data_shape=[3, 8, 4], patch_size=2))
    tok = m.denoiser.tokenizer
    x = torch.randn(5, 3, 8, 4)
    assert tok.to_tokens(x).shape == (5, 8, 12)
    assert torch.equal(tok.from_tokens(tok.to_tokens(x)), x)
    # a token is a spatial patch: token 0 holds pixels [:, 0:2, 0:2]
    assert torch.equal(tok.to_tokens(x)[:, 0].reshape(5, 3, 2, 2), x[:, :, 0:2, 0:2])


def test_generate_reproducible_and_seed_sensitive():
    m = DiffusionModel(cfg())
    m.train_step(torch.randn(32, 2))
    a, ta = m.generate(64, seed=7, keep_every=5)
    b, tb = m.generate(64, seed=7, keep_every=5)
    c, _ = m.generate(64, seed=8)
    assert torch.equal(a, b) and torch.equal(ta.x, tb.x) and not torch.equal(a, c)
    assert ta.timesteps == [50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 1, 0]
    d, _ = m.generate((64, 2), seed=7, sampler="ddim", num_steps=10, eta=0.0)
    e, _ = m.generate((64, 2), seed=7, sampler="ddim", num_steps=10, eta=0.0)
    assert torch.equal(d, e)


def test_bad_generate_and_train_inputs():
    m = DiffusionModel(cfg())
    with pytest.raises(ValueError, match="shape must be"):
        m.generate((4, 3))
    with pytest.raises(ValueError, match=r"x_0 must have shape \[B, 2\], got \[4, 3\]"):
        m.train_step(torch.randn(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        m.train_step(torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="unconditional"):
        m.generate(4, condition=1)
    with pytest.raises(ValueError, match="noise_level"):
        m.forward_diffusion(torch.zeros(2, 2), 1.5)
    x_t, eps = m.forward_diffusion(torch.zeros(2, 2), 0.6)
    assert torch.allclose(x_t, 0.6 * eps)


def test_single_denoising_step_matches_sampler():
    m = DiffusionModel(cfg())
    m.train_step(torch.randn(32, 2))
    x = torch.randn(8, 2)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    step = m.single_denoising_step(x, 50, generator=g1)
    rec = next(m.generate_progressive(8, generator=g2, x_T=x))
    assert torch.allclose(step, rec.x_prev, atol=1e-6)
    with pytest.raises(ValueError, match="t must be an integer in 1..50"):
        m.single_denoising_step(x, 0)


def test_checkpoint_round_trip(tmp_path):
    m = DiffusionModel(cfg(model_type="conditional", num_classes=3, noise_schedule="cosine"))
    for _ in range(5):
        m.train_step(torch.randn(32, 2), torch.randint(0, 3, (32,)))
    path = m.save(tmp_path / "m.safetensors", extra={"dataset": "test"})
    m2 = DiffusionModel.load(path)
    assert m2.training_step == 5 and m2.config == {**m.config, "device": "auto"} and m2.metadata == {"dataset": "test"}
    a, _ = m.generate(32, condition=2, seed=1, cfg_scale=2.0)
    b, _ = m2.generate(32, condition=2, seed=1, cfg_scale=2.0)
    assert torch.equal(a, b)
    assert b"pickle" not in path.read_bytes()[:8]  # it is a safetensors file: 8-byte header length, then JSON
    json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])


def test_corrupt_truncated_and_mismatched_checkpoints(tmp_path):
    m = DiffusionModel(cfg())
    path = m.save(tmp_path / "m.safetensors")
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "tiny": data[:5],
        "flipped": data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:],
        "garbage": b"\x00" * 100,
        "text": b"hello world, not a checkpoint at all",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(CheckpointError):
            DiffusionModel.load(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        DiffusionModel.load(tmp_path / "nope.safetensors")
    # a config that does not match the tensors
    other = DiffusionModel(cfg(hidden_dim=64))
    with pytest.raises(ValueError, match="hidden_dim"):
        m.load_state_dict(other.get_state_dict())
    before = {k: v.clone() for k, v in m.denoiser.state_dict().items()}
    bad = m.get_state_dict()
    bad["denoiser"]["encoder.0.ffn.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"tensor 'encoder.0.ffn.0.weight' has shape \[3, 3\]"):
        m.load_state_dict(bad)
    assert all(torch.equal(before[k], v) for k, v in m.denoiser.state_dict().items()), "a failed load changed the model"


def test_training_on_moons_approaches_the_data():
    """Loose sanity bound; bench/bench_core.py prints the real figures."""
    torch.manual_seed(0)
    x, _ = make_dataset("moons", 8000, seed=0)
    m = DiffusionModel(cfg(hidden_dim=64, embedding_dim=64, num_layers=3, num_diffusion_steps=1000, ema_decay=0.995))
    m.setup_training({"learning_rate": 2e-3, "scheduler_steps": 1200, "warmup_steps": 100})
    losses = [e.loss for e in m.train_progressive(x, num_steps=1200, batch_size=256)]
    assert sum(losses[-100:]) / 100 < 0.8 * sum(losses[:100]) / 100
    ref, _ = make_dataset("moons", 1000, seed=11)
    out, _ = m.generate(1000, seed=0, sampler="ddpm", num_steps=100)
    noise = torch.randn(1000, 2)
    d_model, d_noise = mmd2(out, ref), mmd2(noise, ref)
    assert d_model < 5e-3 < d_noise, (d_model, d_noise)
    assert sliced_wasserstein(out, ref) < 0.5 * sliced_wasserstein(noise, ref)


@pytest.mark.parametrize("ptype", ["unconditional", "conditional"])
def test_shared_timestep_broadcasts_like_a_per_sample_one(ptype):
    """Samplers pass one t for the whole batch; it must give what a per-sample t gives."""
    extra = {"num_classes": 3} if ptype == "conditional" else {}
    m = DiffusionModel(cfg(model_type=ptype, data_shape=[1, 8, 8], **extra))
    for p in m.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    net = m.denoiser.eval()
    x, lab = torch.randn(6, 1, 8, 8), (torch.randint(0, 3, (6,)) if extra else None)
    assert torch.allclose(net(x, torch.full((6,), 0.3), lab), net(x, torch.tensor([0.3]), lab), atol=1e-5)
    eps = m.noise_predictor(lab, 6, use_ema=False)
    assert torch.allclose(eps(x, torch.full((6,), 15)), net(x, torch.full((6,), 15 / 50), lab), atol=1e-5)
