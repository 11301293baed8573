"""What a model would cost, computed from its config alone, before any module is built.

A checkpoint describes the model it wants; an untrusted one can describe a model of 181 billion parameters, or an
image model with one token per pixel whose every forward pass costs minutes.  ``model_cost`` counts the denoiser's
parameters, tokens per sample and forward FLOPs per sample with closed formulas (no module, no tensor), and
``Budget.check`` refuses a config over its caps with a message naming the config fields that drive the cost.
``state_shapes`` / ``expected_shapes`` give the tensor names and shapes the config implies, computed, so that a
checkpoint's tensors can be matched before the real model exists.  (Building the denoiser on PyTorch's "meta"
device would give them too, but its first random initialisation there imports PyTorch's Python decompositions:
about 75 MB of resident memory for the life of the app.)

The formulas mirror adiff/nn/denoisers.py (tests compare them with the built module and with PyTorch's FLOP
counter).  Everything they read comes through ``arch_of``: the one place to change when the config changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DEFAULT_BUDGET",
    "Arch",
    "Budget",
    "BudgetError",
    "ModelCost",
    "admit_checkpoint",
    "arch_of",
    "check_shapes",
    "checkpoint_config",
    "expected_shapes",
    "model_cost",
    "state_shapes",
]


class BudgetError(ValueError):
    """A config whose model would cost more than the budget allows (the message names the fields)."""


@dataclass(frozen=True)
class Arch:
    """The architecture fields the cost depends on (nothing about the diffusion process or training)."""

    model_type: str  # "conditional" | "unconditional"
    embedding_dim: int  # E: sinusoidal time features and class embeddings
    hidden_dim: int  # D: token width
    num_layers: int  # transformer blocks
    num_heads: int
    mlp_ratio: int  # MLP width r * D
    data_shape: tuple  # (D,) or (C, H, W)
    patch_size: int  # the effective patch size (coordinates per token, or pixels per side)
    num_classes: int | None  # conditional models: K classes (+ 1 null row in the embedding)


def arch_of(cfg) -> Arch:
    """The architecture fields of a validated ModelConfig or its ArchConfig section (adiff.nn.config), the only
    function that reads the config."""
    a = getattr(cfg, "arch", cfg)  # ModelConfig -> its "arch" section
    return Arch(
        a.model_type,
        a.embedding_dim,
        a.hidden_dim,
        a.num_layers,
        a.num_heads,
        a.mlp_ratio,
        tuple(a.data_shape),
        a.effective_patch_size,
        a.num_classes,
    )


@dataclass(frozen=True)
class ModelCost:
    parameters: int  # trainable parameters of one denoiser (the model holds two: weights and their EMA)
    tokens: int  # L: tokens per sample
    token_dim: int  # values per token
    flops: int  # forward FLOPs per sample (one multiply-add = 2 FLOPs)


def _tokens(a: Arch) -> tuple[int, int]:
    """(L, token_dim): (D,) -> D/p tokens of p values; (C, H, W) -> (H/p)(W/p) patches of C*p*p (ViT, Dosovitskiy
    et al. 2021, section 3.1)."""
    p = a.patch_size
    if len(a.data_shape) == 1:
        return a.data_shape[0] // p, p
    c, h, w = a.data_shape
    return (h // p) * (w // p), c * p * p


def _linear(name: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}  # nn.Linear stores weight as [out, in]


def _attention(name: str, D: int) -> dict[str, tuple[int, ...]]:
    return {**_linear(f"{name}.q", D, D), **_linear(f"{name}.kv", D, 2 * D), **_linear(f"{name}.out", D, D)}


def state_shapes(a: Arch) -> dict[str, tuple[int, ...]]:
    """The denoiser's state_dict names and shapes (adiff/nn/denoisers.py), computed: nothing is built.  A test
    compares them with the built module for every kind of config, so a change to the modules shows up here."""
    D, E, r = a.hidden_dim, a.embedding_dim, a.mlp_ratio
    L, td = _tokens(a)
    out = {
        "tokenizer.pos": (1, L, D),
        **_linear("tokenizer.proj", td, D),
        **_linear("noise_embedding.0", E, D),
        **_linear("noise_embedding.2", D, D),
    }
    for i in range(a.num_layers):  # TransformerBlock: LayerNorms without affine parameters
        b = f"encoder.{i}"
        out.update(
            {
                **_attention(f"{b}.attention", D),
                **_linear(f"{b}.ffn.0", D, r * D),
                **_linear(f"{b}.ffn.3", r * D, D),
                **_linear(f"{b}.ada.1", D, 6 * D),
            }
        )
    out.update({**_linear("final_ada.1", D, 2 * D), **_linear("output_proj", D, td)})
    if a.model_type == "conditional":
        out.update(
            {
                "label_embedding.weight": (a.num_classes + 1, E),  # the last row is the null class
                **_linear("condition_embedding.0", E, D),
                **_linear("condition_embedding.2", D, D),
            }
        )
        for i in range(a.num_layers):  # CrossAttentionBlock: two affine LayerNorms and an attention
            c = f"cross_attention.{i}"
            out.update(
                {
                    f"{c}.norm1.weight": (D,),
                    f"{c}.norm1.bias": (D,),
                    f"{c}.norm2.weight": (D,),
                    f"{c}.norm2.bias": (D,),
                    **_attention(f"{c}.attention", D),
                }
            )
    return out


def model_cost(a: Arch) -> ModelCost:
    """Parameters, tokens and forward FLOPs per sample of the denoiser of ``a`` (adiff/nn/denoisers.py).

    Parameters are the sum over ``state_shapes``.  FLOPs count the matrix products, 2 per multiply-add, as in Kaplan
    et al. 2020 ("Scaling Laws for Neural Language Models", Table 1: C_forward ~ 2 N + 2 n_layer n_ctx d_attn), here
    with attention over L tokens (scores and values: 2 * 2 L^2 D per block) and, for conditional models,
    cross-attention to S = 2 context tokens (class and time).  Element-wise work (LayerNorm, GELU, softmax) is left
    out: a few percent at these sizes.  The time and class embeddings are counted per sample (training computes one
    per sample; sampling shares one row).
    """
    D, E, r, n = a.hidden_dim, a.embedding_dim, a.mlp_ratio, a.num_layers
    L, td = _tokens(a)
    params = sum(math.prod(shape) for shape in state_shapes(a).values())
    mac = (
        L * td * D
        + E * D
        + D * D  # tokenizer, timestep MLP
        + n * (6 * D * D + L * (4 * D * D + 2 * r * D * D) + 2 * L * L * D)  # adaLN, q/kv/out, MLP, attention
        + 2 * D * D
        + L * D * td
    )  # final adaLN, output projection
    if a.model_type == "conditional":
        S = 2  # context tokens: the class embedding and the timestep vector
        mac += E * D + D * D + n * (2 * L * D * D + 2 * S * D * D + 2 * L * S * D)
    return ModelCost(parameters=params, tokens=L, token_dim=td, flops=2 * mac)


def _fields(a: Arch, *names: str) -> str:
    shown = {"data_shape": list(a.data_shape)}
    return ", ".join(f"{k} {shown.get(k, getattr(a, k))}" for k in names)


@dataclass(frozen=True)
class Budget:
    """Caps on what a loaded config may cost.  The library's default is what a laptop can hold and run; the app
    passes a smaller one for uploads (parameters from a flag, FLOPs so that its preview stays within seconds)."""

    max_parameters: int = 200_000_000  # per denoiser: 0.8 GB in float32, and the model keeps two (weights + EMA)
    max_tokens: int = 16_384  # tokens per sample (attention costs L^2)
    max_flops: float = 1e12  # forward FLOPs per sample

    def check(self, cfg) -> ModelCost:
        """The cost of ``cfg``, or BudgetError naming the fields when it is over a cap."""
        a = arch_of(cfg)
        cost = model_cost(a)
        if cost.parameters > self.max_parameters:
            fields = ["hidden_dim", "num_layers", "mlp_ratio", "embedding_dim"] + (
                ["num_classes"] if a.num_classes else []
            )
            raise BudgetError(
                f"config ({_fields(a, *fields)}) makes a model of {cost.parameters:,} parameters, "
                f"over the limit of {self.max_parameters:,}"
            )
        if cost.tokens > self.max_tokens:
            raise BudgetError(
                f"config ({_fields(a, 'data_shape')}, patch_size {a.patch_size}) makes {cost.tokens:,} "
                f"tokens per sample, over the limit of {self.max_tokens:,}"
            )
        if cost.flops > self.max_flops:
            raise BudgetError(
                f"config ({_fields(a, 'data_shape')}, patch_size {a.patch_size}, "
                f"{_fields(a, 'hidden_dim', 'num_layers', 'mlp_ratio')}) costs {cost.flops:.3g} FLOPs per "
                f"sample and step, over the limit of {self.max_flops:.3g}"
            )
        return cost


DEFAULT_BUDGET = Budget()


def expected_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """The denoiser's state_dict names and shapes for a ModelConfig (``state_shapes``; nothing is built)."""
    return state_shapes(arch_of(cfg))


def check_shapes(found: dict[str, tuple], expected: dict[str, tuple], what: str) -> None:
    """The tensors ``found`` (name -> shape) must be exactly those ``expected``; ValueError names the first that is
    missing, unexpected or of another shape."""
    missing = [k for k in expected if k not in found]
    if missing:
        raise ValueError(
            f"{what}: no tensor '{missing[0]}' ({len(missing)} of the {len(expected)} its config implies are missing)"
        )
    unexpected = sorted(k for k in found if k not in expected)
    if unexpected:
        name = unexpected[0] if len(unexpected[0]) <= 80 else unexpected[0][:80] + "…"
        raise ValueError(f"{what}: tensor '{name}' is not one its config makes ({len(unexpected)} unexpected)")
    for k, shape in expected.items():
        if tuple(found[k]) != shape:
            raise ValueError(f"{what}: tensor '{k}' has shape {list(found[k])}; its config implies {list(shape)}")


def checkpoint_config(ckpt, device: str):
    """The validated ModelConfig of an opened checkpoint (adiff.nn.checkpoints.CheckpointFile) on ``device``: nested
    or flat, and a checkpoint from before the config sections migrated as DiffusionModel.load does
    (checkpoints.migrate_config).  Nothing is built; a bad config is a CheckpointError naming the field."""
    from .checkpoints import CheckpointError, migrate_config
    from .config import ModelConfig

    try:
        return ModelConfig.from_dict({**migrate_config(ckpt.config, ckpt.meta.get("schedule")), "device": device})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {ckpt.name} has an invalid config: {e}") from None


def admit_checkpoint(ckpt, device: str, budget: Budget):
    """The ModelConfig of an opened checkpoint (adiff.nn.checkpoints.CheckpointFile) on ``device``, once its config
    is valid, fits ``budget``, and its tensor names and shapes are exactly those the config implies (for the parts
    it holds: "ema." and/or "denoiser.").  Nothing is built; every failure is a CheckpointError."""
    from .checkpoints import CheckpointError

    cfg = checkpoint_config(ckpt, device)
    try:
        budget.check(cfg)
    except BudgetError as e:
        raise CheckpointError(f"checkpoint {ckpt.name} is over budget: {e}") from None
    ckpt.extra  # noqa: B018 - raises when the metadata's 'extra' is not an object
    present = [p for p in ("ema", "denoiser") if any(k.startswith(p + ".") for k in ckpt.specs)] or ["ema"]
    shapes = expected_shapes(cfg)
    try:
        check_shapes(
            {k: s for k, (_, s) in ckpt.specs.items()},
            {f"{p}.{k}": s for p in present for k, s in shapes.items()},
            f"checkpoint {ckpt.name}",
        )
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    return cfg
