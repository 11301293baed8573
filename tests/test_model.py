"""DiffusionModel: denoisers for any data shape, training, generation, checkpoints."""

import contextlib
import json

import pytest
import torch

from adiff import DiffusionModel
from adiff.nn.checkpoints import CheckpointError
from tests.configs import tiny


def cfg(**kw):
    return tiny(**kw)


@pytest.mark.parametrize(
    "shape,ptype",
    [([2], "unconditional"), ([6], "conditional"), ([1, 8, 8], "unconditional"), ([3, 4, 4], "conditional")],
)
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
    a, ta = m.generate(64, seed=7, keep_every=5, sampler="ddpm")
    b, tb = m.generate(64, seed=7, keep_every=5, sampler="ddpm")
    c, _ = m.generate(64, seed=8, sampler="ddpm")
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


def test_a_dataset_smaller_than_the_batch_still_trains_on_full_batches():
    """30 uploaded images and batch 128: every step draws 128 examples (with replacement), each with its own label."""
    m = DiffusionModel(cfg(model_type="conditional", num_classes=2))
    x, labels = torch.randn(10, 2), torch.arange(10) % 2
    seen = []
    m.denoiser.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape[0], args[2].clone())))
    for _ in m.train_progressive(x, labels, num_steps=3, batch_size=32, seed=0):
        pass
    assert [b for b, _ in seen] == [32, 32, 32]
    dropped = torch.cat([y for _, y in seen]) == 2  # the null class of CFG label dropout (10 %)
    assert 0 < int(dropped.sum()) < 96 // 4
    assert set(torch.cat([y for _, y in seen])[~dropped].tolist()) == {0, 1}


def test_single_denoising_step_matches_sampler():
    m = DiffusionModel(cfg())
    m.train_step(torch.randn(32, 2))
    x = torch.randn(8, 2)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    step = m.single_denoising_step(x, 50, generator=g1)
    rec = next(m.generate_progressive(8, generator=g2, x_T=x, sampler="ddpm"))
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


@pytest.mark.parametrize(
    "extra",
    [
        {"prediction_type": "v_prediction"},
        {"prediction_type": "sample"},
        {"process": "flow", "num_diffusion_steps": None},
        {"process": "flow", "prediction_type": "sample", "flow_shift": 3.0, "num_diffusion_steps": None},
    ],
)
def test_processes_and_prediction_types_round_trip(tmp_path, extra):
    c = {k: v for k, v in {**cfg(), **extra}.items() if v is not None}
    m = DiffusionModel(c)
    m.train_step(torch.randn(32, 2))
    m2 = DiffusionModel.load(m.save(tmp_path / "m.safetensors"))
    assert m2.prediction_type == m.prediction_type and m2.process.to_dict() == m.process.to_dict()
    sampler = "heun" if m.process.name == "flow" else "dpmpp_2m"
    a, _ = m.generate(16, seed=1, sampler=sampler, num_steps=5)
    b, _ = m2.generate(16, seed=1, sampler=sampler, num_steps=5)
    assert torch.equal(a, b)


def test_checkpoints_from_before_prediction_types_load_as_epsilon_models(tmp_path):
    """A flat config (the format before typed sections) is an epsilon-prediction VP model whose linear schedule ran
    from 1e-4 to 0.02 at any T: loading it must not rescale the betas (the new default for T != 1000)."""
    from adiff.nn.checkpoints import save_checkpoint

    m = DiffusionModel(cfg(beta_range=[1e-4, 0.02]))  # T = 50: the range of old checkpoints
    old_config = {
        k: v for k, v in m.cfg.flat().items() if k not in ("process", "prediction_type", "beta_range", "flow_shift")
    }
    old_config["data_shape"] = list(old_config["data_shape"])
    tensors = {f"ema.{k}": v for k, v in m.get_state_dict()["ema"].items()}
    path = save_checkpoint(
        tmp_path / "old.safetensors",
        tensors,
        {
            "config": old_config,
            "counters": {"training_step": 3, "adaptation_step": 0},
            "schedule": {"name": "linear", "num_steps": 50, "beta_start": 1e-4, "beta_end": 0.02},
            "extra": {},
        },
    )
    old = DiffusionModel.load(path)
    assert old.prediction_type == "epsilon" and old.process.name == "vp" and old.training_step == 3
    assert torch.equal(old.noise_schedule.betas, m.noise_schedule.betas), "the old betas, not the rescaled ones"
    assert not torch.equal(old.noise_schedule.betas, DiffusionModel(cfg()).noise_schedule.betas)
    for name in ("moons", "checkerboard"):  # shipped presets that predate the sections (re-evaluated, not retrained)
        from adiff.presets import preset_path

        assert DiffusionModel.load(preset_path(name)).prediction_type == "epsilon"


def test_checkpoint_with_an_unknown_prediction_type_names_the_field(tmp_path):
    from adiff.nn.checkpoints import save_checkpoint

    m = DiffusionModel(cfg())
    conf = m.config
    conf["diffusion"]["prediction_type"] = "score"
    tensors = {f"ema.{k}": v for k, v in m.get_state_dict()["ema"].items()}
    path = save_checkpoint(tmp_path / "x.safetensors", tensors, {"config": conf, "counters": {}, "extra": {}})
    with pytest.raises(CheckpointError, match="'prediction_type' must be one of .*'score'"):
        DiffusionModel.load(path)


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


@pytest.mark.parametrize("tokens,context", [(2, None), (2, 3), (4, None)])
def test_small_attention_equals_scaled_dot_product_attention(tokens, context):
    """The broadcast-product path for few (query, key) pairs (the 2-token point denoisers) computes what
    scaled_dot_product_attention computes, values and gradients, for self- and cross-attention."""
    from adiff.nn import denoisers

    torch.manual_seed(0)
    att = denoisers.Attention(32, 4, 0.0)
    x = torch.randn(64, tokens, 32, requires_grad=True)
    c = None if context is None else torch.randn(64, context, 32, requires_grad=True)
    assert tokens * (context or tokens) <= denoisers._SMALL_ATTENTION
    outs = []
    for limit in (denoisers._SMALL_ATTENTION, 0):  # the small path, then SDPA
        old, denoisers._SMALL_ATTENTION = denoisers._SMALL_ATTENTION, limit
        try:
            y = att(x, c)
            wrt = [x, *([] if c is None else [c]), *att.parameters()]
            grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), wrt)
        finally:
            denoisers._SMALL_ATTENTION = old
        outs.append((y.detach(), grads))
    (y_small, g_small), (y_sdpa, g_sdpa) = outs
    assert float((y_small - y_sdpa).abs().max()) <= 1e-5 * float(y_sdpa.abs().max())
    for a, b in zip(g_small, g_sdpa):
        assert float((a - b).abs().max()) <= 5e-5 * max(float(b.abs().max()), 1e-6)  # sums over the batch


def test_tanh_gelu_equals_torchs_with_and_without_grad():
    """The no-grad path (x * sigmoid(2u)) computes torch's tanh GELU; with grad it is torch's kernel itself."""
    from adiff.nn.denoisers import TanhGELU

    x = torch.linspace(-12, 12, 20_001)
    want = torch.nn.functional.gelu(x, approximate="tanh")
    with torch.no_grad():
        got = TanhGELU()(x)
    assert float((got - want).abs().max()) <= 5e-7 * max(1.0, float(want.abs().max()) / 12)
    assert torch.equal(x, torch.linspace(-12, 12, 20_001))  # the input is not written over
    xg = x.clone().requires_grad_()
    assert torch.equal(TanhGELU()(xg), want)
    (g,) = torch.autograd.grad(TanhGELU()(xg).sum(), xg)
    (g_ref,) = torch.autograd.grad(torch.nn.functional.gelu(xg, approximate="tanh").sum(), xg)
    assert torch.equal(g, g_ref)


def test_fused_mlp_layer_gives_the_layers_numbers_in_inference_only():
    """In inference the MLP's first layer and its tanh GELU run as one oneDNN op (where this torch has it: x86 builds
    do): torch's numbers to float rounding, each row alone as in any batch; with autograd, in training mode or
    under a dispatch mode (a FLOP counter prices the layers one by one) the layers run as they are."""
    from torch.utils.flop_counter import FlopCounterMode

    from adiff.nn import gelu

    assert (gelu.fused_op() is not None) == torch.backends.mkldnn.is_available()
    block = _random_net("unconditional", [2], 1).encoder[0]
    h = torch.randn(300, 2, block.ffn[0].in_features, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = block.ffn(h)
        got = block.mlp(h)
        assert float((got - want).abs().max()) <= 1e-6 * max(1.0, float(want.abs().max()))
        assert torch.equal(block.mlp(h[:7].contiguous()), got[:7])
        with FlopCounterMode(display=False):
            assert torch.equal(block.mlp(h), want)
        block.train()
        assert torch.equal(block.mlp(h), want)  # dropout 0 here: the same layers, run one by one
        block.eval()
    assert torch.equal(block.mlp(h), block.ffn(h))  # autograd on


def _random_net(ptype: str, data_shape, patch_size: int, seed: int = 1):
    extra = {"num_classes": 3} if ptype == "conditional" else {}
    m = DiffusionModel(cfg(model_type=ptype, data_shape=data_shape, patch_size=patch_size, **extra))
    torch.manual_seed(seed)
    for p in m.denoiser.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m.denoiser.eval()


def _chunk_sizes(monkeypatch) -> list:
    """The row counts of the chunks the next forwards run (every chunk asks denoisers.rows_function for its call)."""
    from adiff.nn import denoisers

    sizes, real = [], denoisers.rows_function
    monkeypatch.setattr(
        denoisers, "rows_function", lambda net, x, *a, **k: sizes.append(x.shape[0]) or real(net, x, *a, **k)
    )
    return sizes


@pytest.mark.parametrize("ptype", ["unconditional", "conditional"])
def test_row_chunks_give_each_row_what_one_call_gives(ptype, monkeypatch):
    """Without autograd a batch over more than rows.CHUNK_TOKENS tokens runs in row chunks: each row's output is the
    one-call output, with a shared time, a time per row, and a time table with a row index.  With autograd the batch
    runs whole (the same numbers, the gradient of one call)."""
    from adiff.nn import rows

    net = _random_net(ptype, [4], 2)
    B = 37
    x = torch.randn(B, 4)
    lab = torch.randint(0, 4, (B,)) if ptype == "conditional" else None  # 3 = the null label
    index = torch.randint(0, 3, (B,))
    times = [(torch.tensor([0.4]), None), (torch.rand(B), None), (torch.tensor([0.9, 0.05, 0.5]), index)]
    sizes = _chunk_sizes(monkeypatch)
    for t, t_index in times:
        outs = []
        for limit in (10**9, 2 * 5):  # one call; chunks of 5 rows (2 tokens each), the last of 2
            monkeypatch.setattr(rows, "CHUNK_TOKENS", limit)
            sizes.clear()
            with torch.no_grad():
                outs.append(net(x, t, lab, t_index=t_index))
            if limit > 100:
                assert sizes == [B]  # one chunk (run time by time only where chunks stay large)
            elif t_index is None:
                assert sizes == [5] * 7 + [2]
            else:  # time by time, each time's rows in chunks of 5
                counts = torch.bincount(t_index).tolist()
                assert sizes == [min(5, n - i) for n in counts for i in range(0, n, 5)]
            sizes.clear()
            y = net(x.clone().requires_grad_(), t, lab, t_index=t_index)  # with autograd: whole
            assert sizes == [B]  # and the same numbers (TanhGELU's two paths agree to 5e-7)
            assert float((y.detach() - outs[0]).abs().max()) <= 1e-6 * max(1.0, float(outs[0].abs().max()))
        y_one, y_chunks = outs
        assert float((y_one - y_chunks).abs().max()) <= 1e-6 * max(1.0, float(y_one.abs().max()))


@pytest.mark.parametrize("ptype", ["unconditional", "conditional"])
def test_rows_at_several_times_run_time_by_time_with_each_rows_numbers(ptype, monkeypatch):
    """A batch of runs at a few steps (as the sampling engine's rounds) runs time by time, each chunk sharing its time's
    modulation row: each row gets bit for bit what it gets in a batch at its time alone (a run sampling alone),
    whatever the order of the rows; with the modulation rows copied to every row the numbers agree to float rounding
    (a broadcast and a full operand may round differently); per-row times (a training batch's) run row-wise."""
    from adiff.nn import rows

    net = _random_net(ptype, [2], 1)
    monkeypatch.setattr(rows, "CHUNK_TOKENS", 2 * 64)  # chunks of 64 rows
    g = torch.Generator().manual_seed(5)
    runs = [(k % 3, 50 + 7 * k) for k in range(7)]  # (time, rows) per run: times interleaved, not sorted
    t_index = torch.cat([torch.full((n,), k) for k, n in runs])
    B = t_index.shape[0]
    x, t = torch.randn(B, 2, generator=g), torch.tensor([0.9, 0.3, 0.6])
    lab = torch.randint(0, 4, (B,), generator=g) if ptype == "conditional" else None
    sizes = _chunk_sizes(monkeypatch)
    with torch.no_grad():
        grouped = net(x, t, lab, t_index=t_index)
        by_time = list(sizes)
        sizes.clear()
        with monkeypatch.context() as m:
            m.setattr(rows, "time_groups", lambda *a: None)
            rowwise = net(x, t, lab, t_index=t_index)
        for k in range(3):  # and each time's rows alone, at that one time
            at_k = t_index == k
            alone = net(x[at_k], t[k : k + 1], None if lab is None else lab[at_k])
            assert torch.equal(grouped[at_k], alone)
    counts = torch.bincount(t_index).tolist()
    assert by_time == [min(64, n - i) for n in counts for i in range(0, n, 64)]
    assert sizes[: -(-B // 64)] == [min(64, B - i) for i in range(0, B, 64)]  # row-wise: chunks in row order
    assert float((grouped - rowwise).abs().max()) <= 1e-6 * max(1.0, float(rowwise.abs().max()))
    per_row = torch.arange(B) % 40  # 40 times, a few rows each: row-wise
    assert rows.time_groups(per_row, x, 64) is None


@pytest.mark.parametrize(
    "ptype,data_shape,patch", [("unconditional", [2], 1), ("conditional", [2], 1), ("conditional", [1, 8, 8], 4)]
)
def test_traced_rows_equal_the_eager_forward(ptype, data_shape, patch, monkeypatch):
    """Inference runs each chunk as one TorchScript call (adiff/nn/traced.py): the same numbers as the eager forward,
    for chunks of any size (the trace is made on the first), a shared time and a time table with a row index."""
    from adiff.nn import denoisers, rows, traced

    net = _random_net(ptype, data_shape, patch)
    monkeypatch.setattr(rows, "CHUNK_TOKENS", 5 * denoisers.Tokenizer(tuple(data_shape), patch, 8).num_tokens)
    g = torch.Generator().manual_seed(0)
    for B in (13, 5, 1):
        x = torch.randn(B, *data_shape, generator=g)
        lab = torch.randint(0, 4, (B,), generator=g) if ptype == "conditional" else None
        for t, t_index in (
            (torch.tensor([0.3]), None),
            (torch.tensor([0.8, 0.1]), torch.randint(0, 2, (B,), generator=g)),
        ):
            with torch.no_grad():
                fast = net(x, t, lab, t_index=t_index)
                with monkeypatch.context() as m:
                    m.setattr(denoisers, "rows_function", lambda *a, **k: None)  # the eager path
                    eager = net(x, t, lab, t_index=t_index)
            assert torch.equal(fast, eager), float((fast - eager).abs().max())
    assert len(traced._TRACES[net]) == 1  # one trace served every chunk size


def test_traced_rows_follow_the_networks_weights(monkeypatch):
    """The trace holds the network's own parameters: an in-place update (training, EMA) shows at once, replaced
    parameters and a deep copy are traced anew, and training mode, autograd or a dispatch mode run eagerly."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from adiff.nn import denoisers, traced

    net = _random_net("unconditional", [2], 1)
    x, t = torch.randn(50, 2), torch.tensor([0.5])

    def eager(module=net):
        with torch.no_grad(), monkeypatch.context() as m:
            m.setattr(denoisers, "rows_function", lambda *a, **k: None)  # the eager path
            return module(x, t)

    with torch.no_grad():
        first = net(x, t)
        assert torch.equal(first, eager())
        net.output_proj.weight.add_(0.5)  # in place, as an optimizer step or an EMA update
        assert not torch.equal(net(x, t), first) and torch.equal(net(x, t), eager())
        old = next(iter(traced._TRACES[net].values()))
        net.output_proj.weight.data = net.output_proj.weight.data * 2  # replaced by another tensor
        assert torch.equal(net(x, t), eager()) and next(iter(traced._TRACES[net].values())) is not old
        twin = copy.deepcopy(net)
        twin.output_proj.bias.add_(1.0)
        assert torch.equal(twin(x, t), eager(twin)) and twin in traced._TRACES
        assert not torch.equal(twin(x, t), net(x, t))  # its own trace, with its own weights
    for why in ("training", "grad", "dispatch"):
        with contextlib.ExitStack() as stack:
            if why == "training":
                net.train()
                stack.callback(net.eval)
            if why == "dispatch":
                stack.enter_context(FlopCounterMode(display=False))
            if why != "grad":
                stack.enter_context(torch.no_grad())
            assert traced.rows_function(net, x, None, []) is None, why


@pytest.mark.parametrize("ptype", ["unconditional", "conditional"])
def test_traced_rows_with_autograd_give_eagers_gradient(ptype, monkeypatch):
    """Reward guidance differentiates the network's output with respect to x: through the trace made with autograd
    the output and the gradient are eager mode's."""
    from adiff.nn import denoisers, traced

    net = _random_net(ptype, [2], 1)
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(40, 2, generator=g), torch.tensor([0.7])
    lab = torch.randint(0, 4, (40,), generator=g) if ptype == "conditional" else None
    weights = torch.randn(40, 2, generator=g)
    outs = []
    for eager in (False, True):
        if eager:
            monkeypatch.setattr(denoisers, "rows_function", lambda *a, **k: None)
        xg = x.clone().requires_grad_()
        y = net(xg, t, lab)
        (grad,) = torch.autograd.grad((y * weights).sum(), xg)
        outs.append((y.detach(), grad))
    assert any(kind[1] for kind in traced._TRACES[net])  # the first pass went through a trace made with autograd
    (y_traced, g_traced), (y_eager, g_eager) = outs
    assert torch.equal(y_traced, y_eager) and torch.equal(g_traced, g_eager)
