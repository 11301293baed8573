"""Every bad config value raises ValueError naming the field and the value."""

import pytest
import torch

from adiff import DiffusionModel

BASE = {
    "model_type": "unconditional",
    "embedding_dim": 16,
    "hidden_dim": 16,
    "num_layers": 1,
    "num_heads": 2,
    "num_diffusion_steps": 10,
    "data_shape": [2],
    "device": "cpu",
}


def with_(**kw):
    cfg = dict(BASE)
    for k, v in kw.items():
        if v is ...:
            cfg.pop(k)
        else:
            cfg[k] = v
    return cfg


@pytest.mark.parametrize("field", ["model_type", "embedding_dim", "hidden_dim", "num_layers", "num_diffusion_steps"])
def test_missing_required_field(field):
    with pytest.raises(ValueError, match=f"'{field}' is required"):
        DiffusionModel(with_(**{field: ...}))


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"model_type": "gan"}, r"'model_type' must be one of .*'gan'"),
        ({"embedding_dim": "16"}, r"'embedding_dim' must be an integer, got '16'"),
        ({"hidden_dim": 16.0}, r"'hidden_dim' must be an integer, got 16.0"),
        ({"num_layers": True}, r"'num_layers' must be an integer, got True"),
        ({"num_layers": 0}, r"'num_layers' must be in 1..64, got 0"),
        ({"num_diffusion_steps": -5}, r"'num_diffusion_steps' must be in .*-5"),
        ({"num_diffusion_steps": 10**6}, r"'num_diffusion_steps' must be in .*1000000"),
        ({"hidden_dim": 18, "num_heads": 4}, r"'hidden_dim' \(18\) must be divisible by 'num_heads' \(4\)"),
        ({"embedding_dim": 15}, r"'embedding_dim' must be even.*15"),
        ({"dropout": 1.5}, r"'dropout' must be in .*1.5"),
        ({"dropout": float("nan")}, r"'dropout' must be a finite number"),
        ({"noise_schedule": "quadratic"}, r"'noise_schedule' must be one of .*'quadratic'"),
        ({"noise_schedule": "custom"}, r"'custom_schedule_values' is required"),
        (
            {"noise_schedule": "custom", "custom_schedule_values": [0.1, 1.2]},
            r"custom_schedule_values\[1\] = 1.2 is outside \(0, 1\)",
        ),
        (
            {"noise_schedule": "custom", "custom_schedule_values": [0.5, 0.2]},
            r"custom_schedule_values\[1\] = 0.2 is not greater",
        ),
        ({"device": "tpu"}, r"'device' must be one of .*'tpu'"),
        ({"precision": "int8"}, r"'precision' must be one of .*'int8'"),
        ({"buffer_capacity": 0}, r"'buffer_capacity' must be in .*0"),
        ({"data_shape": [2, 2]}, r"'data_shape' must be \[D\] or \[C, H, W\].*"),
        ({"data_shape": [0]}, r"'data_shape'"),
        ({"data_shape": [1, 16, 16], "patch_size": 3}, r"'patch_size' \(3\) must divide"),
        ({"num_classes": 3}, r"'num_classes' is only for conditional models, got 3"),
        ({"model_type": "conditional"}, r"'num_classes' must be an integer >= 1 .*None"),
        ({"model_type": "conditional", "num_classes": 0}, r"'num_classes' must be an integer >= 1 .*0"),
        ({"learning_rate": 0.1}, r"'learning_rate' is unknown"),
        ({"process": "sde"}, r"'process' must be one of \['vp', 'flow'\], got 'sde'"),
        ({"prediction_type": "score"}, r"'prediction_type' must be one of .*'score'"),
        ({"prediction_type": "velocity"}, r"'prediction_type' 'velocity' does not serve the vp process"),
        (
            {"process": "flow", "prediction_type": "epsilon", "num_diffusion_steps": ...},
            r"'prediction_type' 'epsilon' does not serve the flow",
        ),
        ({"process": "flow"}, r"'num_diffusion_steps' is for the 'vp' process.*got 10"),
        (
            {"process": "flow", "num_diffusion_steps": ..., "flow_shift": 0.0},
            r"'flow_shift' must be in \[0.1, 10.0\], got 0.0",
        ),
        ({"beta_range": [0.02, 1e-4]}, r"'beta_range' must be \[beta_1, beta_T\]"),
        ({"beta_range": [1e-4, 0.02], "noise_schedule": "cosine"}, r"'beta_range' is for the linear schedule only"),
        ({"arch": {"hidden_dim": 8, "depth": 2}}, r"'arch.depth' is unknown"),
        ({"diffusion": [1]}, r"section 'diffusion' must be an object"),
    ],
)
def test_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        DiffusionModel(with_(**kw))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message; this machine has a GPU")
def test_cuda_without_gpu():
    with pytest.raises(ValueError, match=r"'device' is 'cuda' but no CUDA GPU"):
        DiffusionModel(with_(device="cuda"))


def test_not_a_dict():
    with pytest.raises(ValueError, match="config must be a dict"):
        DiffusionModel([("model_type", "unconditional")])


def test_sections_nested_and_flat_are_the_same_config():
    from adiff.nn.config import ModelConfig

    flat = ModelConfig.from_dict(with_(prediction_type="v_prediction", noise_schedule="cosine", ema_decay=0.99))
    nested = ModelConfig.from_dict(flat.to_dict())
    assert nested == flat and flat.to_dict()["diffusion"]["prediction_type"] == "v_prediction"
    assert flat.arch.hidden_dim == 16 and flat.training.ema_decay == 0.99 and flat.diffusion.num_diffusion_steps == 10
    assert set(flat.to_dict()) == {"arch", "diffusion", "training", "device", "precision"}
    assert ModelConfig.from_dict(with_()).diffusion.prediction_type == "epsilon", "VP defaults to epsilon"
    flow = ModelConfig.from_dict(with_(process="flow", num_diffusion_steps=...))
    assert flow.diffusion.prediction_type == "velocity", "a flow defaults to its velocity"


def test_good_configs_build():
    m = DiffusionModel(with_(noise_schedule="custom", custom_schedule_values=[0.01, 0.5, 0.999]))
    assert m.noise_schedule.num_steps == 10
    m = DiffusionModel(with_(model_type="conditional", num_classes=3, data_shape=[1, 8, 8], device="auto"))
    assert m.is_conditional and m.denoiser.tokenizer.num_tokens == 4
    assert m.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
