"""Loading untrusted checkpoints (issue 14): the budget is computed from the config alone and checked before any
module is built; headers are size- and depth-limited; weights must be finite and counters non-negative integers;
an over-budget file raises CheckpointError without allocating the model (measured in a fresh process)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from adiff import DiffusionModel
from adiff.nn.budget import (
    DEFAULT_BUDGET,
    Budget,
    BudgetError,
    arch_of,
    expected_shapes,
    model_cost,
)
from adiff.nn.checkpoints import CheckpointError, open_checkpoint, parse_json
from adiff.nn.config import ModelConfig
from adiff.nn.denoisers import build_denoiser
from tests import hostile_files as H

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = [
    {},
    {"model_type": "conditional", "num_classes": 8, "hidden_dim": 64, "embedding_dim": 64, "num_layers": 3},
    {"model_type": "conditional", "num_classes": 10, "data_shape": [1, 16, 16], "patch_size": 4, "hidden_dim": 96},
    {"data_shape": [3, 8, 4], "patch_size": 2, "mlp_ratio": 2},
    {"data_shape": [6], "patch_size": 3, "num_heads": 2, "mlp_ratio": 16},
    {"data_shape": [1, 12, 12], "num_layers": 1},  # default patch 4
]


@pytest.mark.parametrize("changes", CONFIGS)
def test_cost_formulas_match_the_built_module_and_pytorchs_flop_counter(changes, monkeypatch):
    from adiff.nn import denoisers

    # attention over a few tokens runs as broadcast products (the same multiply-adds, which the FLOP counter does not
    # see as elementwise ops): count it through SDPA's math backend, as matrix products
    monkeypatch.setattr(denoisers, "_SMALL_ATTENTION", 0)
    cfg = ModelConfig.from_dict({**H.SMALL, **changes})
    cost = model_cost(arch_of(cfg))
    net = build_denoiser(cfg.arch).eval()
    assert cost.parameters == sum(p.numel() for p in net.parameters())
    assert expected_shapes(cfg) == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    B = 3
    x, t = torch.randn(B, *cfg.arch.data_shape), torch.rand(B)
    cond = torch.zeros(B, dtype=torch.long) if cfg.arch.model_type == "conditional" else None
    # the math attention backend runs attention as matrix products, which the FLOP counter sees
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        net(x, t, cond)
    assert cost.flops == counter.get_total_flops() / B
    assert cost.tokens == net.tokenizer.num_tokens


def test_expected_shapes_allocate_nothing():
    cfg = ModelConfig.from_dict({**H.SMALL, "hidden_dim": 8192, "num_layers": 2, "mlp_ratio": 16, "num_heads": 8})
    shapes = expected_shapes(cfg)  # 2 x 1.9 G parameters on a real device; "meta" stores none
    assert shapes["encoder.1.ffn.0.weight"] == (16 * 8192, 8192)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"hidden_dim": 8192, "num_layers": 64, "mlp_ratio": 16, "num_heads": 8}, "hidden_dim 8192"),
        ({"model_type": "conditional", "num_classes": 100_000, "embedding_dim": 4096}, "num_classes 100000"),
        ({"data_shape": [1, 256, 256], "patch_size": 1}, "data_shape [1, 256, 256]"),
    ],
)
def test_default_budget_refuses_what_a_laptop_cannot_hold(changes, field):
    cfg = ModelConfig.from_dict({**H.SMALL, **changes})
    with pytest.raises(BudgetError, match="over the limit") as info:
        DEFAULT_BUDGET.check(cfg)
    assert field in str(info.value)
    assert DEFAULT_BUDGET.check(ModelConfig.from_dict(H.SMALL)).parameters < 50_000


def load_error(blob: bytes, budget=None) -> str:
    with pytest.raises(CheckpointError) as info:
        DiffusionModel.load(blob, budget=budget)
    return str(info.value)


def test_hostile_files_are_refused_with_a_message_naming_the_field():
    good = H.valid_checkpoint()
    assert DiffusionModel.load(good).training_step == 0
    cases = {
        "inflated config": (
            H.with_config(good, hidden_dim=1024, num_layers=2, mlp_ratio=16),
            "tensor 'ema.tokenizer.pos' has shape [1, 2, 32]; its config implies [1, 2, 1024]",
        ),
        "largest config": (
            H.with_config(good, hidden_dim=8192, num_layers=64, mlp_ratio=16, num_heads=8),
            "over budget: config (hidden_dim 8192, num_layers 64, mlp_ratio 16",
        ),
        "many classes": (
            H.with_config(good, model_type="conditional", num_classes=100_000, embedding_dim=4096),
            "num_classes 100000",
        ),
        "many classes, small": (H.with_config(good, model_type="conditional", num_classes=100_000), "label_embedding"),
        "huge header": (H.huge_header(63), "its header is 66,06"),
        "nested header": (H.nested_header(), "nested 100000 levels deep, over the limit of 32"),
        "NaN weights": (H.with_nonfinite(good), "tensor 'ema.encoder.0.ffn.0.weight' has 3 NaN or infinite values"),
        "inf weights": (H.with_nonfinite(good, float("inf"), 1), "has 1 NaN or infinite values"),
        "counters Infinity": (
            H.with_meta(good, counters={"training_step": float("inf")}),
            "'counters.training_step' must be a non-negative integer, got inf",
        ),
        "counters [1]": (H.with_meta(good, counters=[1]), "field 'counters' must be an object, got [1]"),
        "negative counter": (H.with_meta(good, counters={"adaptation_step": -3}), "'counters.adaptation_step'"),
        "fractional counter": (H.with_meta(good, counters={"training_step": 1.5}), "got 1.5"),
        "extra not a dict": (H.with_meta(good, extra=[1, 2]), "'extra' must be an object"),
        "config not a dict": (H.with_meta(good, config="x" * 5000), "'config' must be an object, got 'xxxx"),
    }
    for name, (blob, expected) in cases.items():
        msg = load_error(blob)
        assert expected in msg, (name, msg)
        assert len(msg) < 400, (name, len(msg))  # echoed input is cut short
    # the metadata string itself is parsed with the same limits
    deep_meta = H.with_meta(good, extra={"a": json.loads("[" * 40 + "]" * 40)})
    assert "its metadata is nested 42 levels deep" in load_error(deep_meta)


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"hidden_dim": 1024, "num_layers": 2, "mlp_ratio": 16},
            "has shape [1, 2, 32]; its config implies [1, 2, 1024]",
        ),
        (
            {"hidden_dim": 8192, "num_layers": 64, "mlp_ratio": 16, "num_heads": 8},
            "over budget: config (hidden_dim 8192",
        ),
        ({"model_type": "conditional", "num_classes": 100_000, "embedding_dim": 4096}, "num_classes 100000"),
        ({"data_shape": [1, 256, 256], "patch_size": 1}, "65,536 tokens per sample"),
    ],
)
def test_the_budget_reads_flat_configs_from_before_the_sections_too(changes, expected):
    """Checkpoints written before the config had sections (the shipped presets are such) go through
    checkpoints.migrate_config and the same budget: the flat form is no way around it."""
    flat = H.as_flat(H.valid_checkpoint())
    old = DiffusionModel.load(flat)  # a valid one still loads, as the epsilon VP model it is
    assert old.prediction_type == "epsilon" and old.cfg.diffusion.beta_range == (1e-4, 0.02)
    msg = load_error(H.with_config(flat, **changes))
    assert expected in msg, msg


def test_the_budget_equals_every_shipped_preset_as_built():
    """model_cost and expected_shapes, computed from the config, equal the denoiser DiffusionModel.load builds for
    every preset (2-D, glyphs, digits: conditional, image patches)."""
    from adiff.presets import list_presets, preset_path

    for name in list_presets():
        if not preset_path(name).is_file():
            continue
        model = DiffusionModel.load(preset_path(name), device="cpu")
        cost = model_cost(arch_of(model.cfg))
        assert cost.parameters == sum(p.numel() for p in model.denoiser.parameters()) == model.num_parameters, name
        assert expected_shapes(model.cfg) == {k: tuple(v.shape) for k, v in model.denoiser.state_dict().items()}, name
        assert cost.tokens == model.denoiser.tokenizer.num_tokens, name


def test_app_sized_budget_refuses_the_compute_bomb():
    bomb = H.compute_bomb()
    assert len(bomb) < 200_000
    model = DiffusionModel.load(bomb)  # within the library's default budget: a library user may want it
    assert model.denoiser.tokenizer.num_tokens == 4096
    msg = load_error(bomb, Budget(max_parameters=50_000_000, max_tokens=256, max_flops=1.5e8))
    assert "data_shape [1, 64, 64], patch_size 1) makes 4,096 tokens per sample, over the limit of 256" in msg


def test_json_depth_scan_ignores_brackets_inside_strings():
    assert parse_json(json.dumps({"s": "[" * 500 + '\\"[[' + "{" * 100}).encode(), "x") == {
        "s": "[" * 500 + '\\"[[' + "{" * 100
    }
    assert parse_json(b'{"a": "\\\\", "b": [[1]]}', "x") == {"a": "\\", "b": [[1]]}
    with pytest.raises(CheckpointError, match="nested 33 levels"):
        parse_json(b'{"a": "\\\\"' + b', "b": ' + b"[" * 32 + b"]" * 32 + b"}", "x")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        parse_json(b'{"a": ', "x")


def test_open_checkpoint_reads_only_the_header(tmp_path):
    good = H.valid_checkpoint()
    p = tmp_path / "m.safetensors"
    p.write_bytes(good + b"")
    ckpt = open_checkpoint(p, name="mine.safetensors")
    assert ckpt.config["arch"]["hidden_dim"] == 32 and ckpt.counters == {"training_step": 0, "adaptation_step": 0}
    assert ckpt.specs["ema.encoder.0.ffn.0.weight"] == ("F32", (128, 32))
    p.write_bytes(good[:-100])  # the tensors are not read until asked for
    ckpt = open_checkpoint(p, name="mine.safetensors")
    with pytest.raises(CheckpointError, match="'mine.safetensors' is corrupt or truncated"):
        ckpt.tensors()


def test_load_state_dict_refuses_non_finite_weights_and_bad_counters():
    m = DiffusionModel(H.SMALL)
    before = {k: v.clone() for k, v in m.denoiser.state_dict().items()}
    st = m.get_state_dict()
    st["ema"]["output_proj.weight"] = torch.full_like(st["ema"]["output_proj.weight"], float("nan"))
    with pytest.raises(ValueError, match="state 'ema': tensor 'output_proj.weight' has 32 NaN"):
        m.load_state_dict(st)
    st = m.get_state_dict()
    st["training_step"] = float("inf")
    with pytest.raises(ValueError, match="counters.training_step"):
        m.load_state_dict(st)
    assert all(torch.equal(before[k], v) for k, v in m.denoiser.state_dict().items())


PROBE = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from adiff import DiffusionModel
    from adiff.nn.checkpoints import CheckpointError

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    out = {}
    DiffusionModel.load(sys.argv[1])  # warm-up: one real load (imports, the allocator)
    for path in sys.argv[3:]:
        before = hwm()
        try:
            DiffusionModel.load(path)
            out[path] = ("loaded", hwm() - before)
        except CheckpointError as e:
            out[path] = (str(e)[:200], hwm() - before)
    before = hwm()
    DiffusionModel(json.loads(sys.argv[2]))  # the control: a model that is really built
    out["control"] = ("built", hwm() - before)
    print(json.dumps(out))
""")


def test_refused_loads_allocate_nothing_measured_in_a_fresh_process(tmp_path):
    """VmHWM (peak RSS) of a fresh process: refusing the 181-billion-parameter config, the inflated one (2 x 350 MB
    if built) and NaN weights raises its peak by less than 30 MB; building a 2 x 88 MB model (the control) shows
    the measurement sees real allocations."""
    good = H.valid_checkpoint()
    files = {
        "largest": H.with_config(good, hidden_dim=8192, num_layers=64, mlp_ratio=16, num_heads=8),
        "inflated": H.with_config(good, hidden_dim=1024, num_layers=2, mlp_ratio=16),
        "nan": H.with_nonfinite(good),
        "header": H.huge_header(63),
    }
    paths = []
    (tmp_path / "good.safetensors").write_bytes(good)
    for name, blob in files.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        paths.append(str(p))
    control = {**H.SMALL, "hidden_dim": 512, "num_layers": 2, "mlp_ratio": 16}  # 22 M parameters
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "good.safetensors"), json.dumps(control), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for path in paths:
        msg, grew = out[path]
        assert msg != "loaded" and "checkpoint" in msg, (path, msg)
        assert grew < 30, (path, msg, grew)
    assert out["control"][1] > 150, out["control"]
