"""Transformer noise predictors eps_theta(x_t, t[, condition]): nn.Modules only, no diffusion math here.

One architecture serves 2-D points and images: the sample is cut into tokens (``patch_size`` coordinates of a
vector, or ``patch_size`` x ``patch_size`` pixel patches of an image, as in ViT/DiT), each token gets a learned
position embedding, and a stack of transformer blocks predicts the noise token by token.  The timestep enters
every block through adaptive LayerNorm with zero-initialised gates (adaLN-Zero, Peebles & Xie 2023, "DiT");
the conditional model adds cross-attention from the tokens to a context made of the class embedding and the
timestep embedding (the original design's CrossAttentionBlock), with one extra "null" class that is used for
classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import rows
from .gelu import TanhGELU, linear_gelu
from .traced import rows_function

__all__ = [
    "timestep_embedding",
    "Tokenizer",
    "TanhGELU",
    "TransformerBlock",
    "CrossAttentionBlock",
    "DenoiserNetwork",
    "UnconditionalDenoiser",
    "ConditionalDenoiser",
    "build_denoiser",
]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of a continuous time t in [0, 1] (scaled to [0, 1000] as in DDPM's integer steps).

    t [B] -> [B, dim]  (Vaswani et al. 2017; Ho et al. 2020 appendix B).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (1000.0 * t.float()).unsqueeze(-1) * freqs  # [B, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Tokenizer(nn.Module):
    """Cuts a sample into tokens and back.  (D,) -> D/p tokens of p values; (C, H, W) -> (H/p)(W/p) patches of C*p*p."""

    def __init__(self, data_shape: tuple, patch_size: int, hidden_dim: int):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.p = p = patch_size
        if len(self.data_shape) == 1:
            (d,) = self.data_shape
            self.num_tokens, self.token_dim = d // p, p
        else:
            c, h, w = self.data_shape
            self.num_tokens, self.token_dim = (h // p) * (w // p), c * p * p
        self.proj = nn.Linear(self.token_dim, hidden_dim)
        self.pos = nn.Parameter(torch.randn(1, self.num_tokens, hidden_dim) * 0.02)  # learned positions

    def to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *data_shape] -> [B, L, token_dim]"""
        B, p = x.shape[0], self.p
        if len(self.data_shape) == 1:
            return x.reshape(B, self.num_tokens, p)
        c, h, w = self.data_shape
        x = x.reshape(B, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, self.num_tokens, self.token_dim)

    def from_tokens(self, tok: torch.Tensor) -> torch.Tensor:
        """tok [B, L, token_dim] -> [B, *data_shape]"""
        B, p = tok.shape[0], self.p
        if len(self.data_shape) == 1:
            return tok.reshape(B, *self.data_shape)
        c, h, w = self.data_shape
        x = tok.reshape(B, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(B, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.to_tokens(x)) + self.pos  # [B, L, D]


# Attention over at most this many (query, key) pairs per head is computed with broadcast products instead of
# scaled_dot_product_attention: the 2-token point denoisers' attention (2 x 2 pairs) took a fifth of a CPU forward in
# SDPA's blocked kernel and its layout copies; the products give the same softmax(q k^T / sqrt(d)) v.
_SMALL_ATTENTION = 16


class Attention(nn.Module):
    """Multi-head attention over [B, L, D] queries and [B, S, D] keys/values (scaled dot product)."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.h, self.dropout = num_heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        B, L, D = x.shape
        ctx = x if context is None else context
        S, h, d = ctx.shape[1], self.h, D // self.h
        dropout = self.dropout if self.training else 0.0
        if S == 2 and L <= _SMALL_ATTENTION and dropout == 0.0:
            return self.out(self._two_keys(x, ctx, h, d))
        if L * S <= _SMALL_ATTENTION and dropout == 0.0:
            return self.out(self._products(x, ctx, h, d))
        q = self.q(x).reshape(B, L, h, d).transpose(1, 2)  # [B, h, L, d]
        k, v = self.kv(ctx).reshape(B, S, 2, h, d).permute(2, 0, 3, 1, 4)  # [B, h, S, d]
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        return self.out(y.transpose(1, 2).reshape(B, L, D))

    def _two_keys(self, x: torch.Tensor, ctx: torch.Tensor, h: int, d: int) -> torch.Tensor:
        """The heads' outputs [B, L, D] over two keys: softmax over two scores is a sigmoid of their difference, weight
        p on v0 and 1 - p on v1, i.e. v1 + p (v0 - v1): a quarter of ``_products``' work (10.5 -> 9.4 us a row, moons)."""
        B, L, D = x.shape
        q = self.q(x).view(B, L, h, d)
        k, v = self.kv(ctx).view(B, 1, 2, 2, h, d).unbind(3)  # [B, 1, S, h, d] each
        p = torch.sigmoid((q * (k[:, :, 0] - k[:, :, 1])).sum(-1) * d**-0.5)  # [B, L, h]
        v1 = v[:, :, 1]
        return torch.addcmul(v1, p.unsqueeze(-1), v[:, :, 0] - v1).reshape(B, L, D)

    def _products(self, x: torch.Tensor, ctx: torch.Tensor, h: int, d: int) -> torch.Tensor:
        """The heads' outputs [B, L, D] by broadcast products: softmax(q k^T / sqrt(d)) v for a few (query, key) pairs."""
        B, L, D = x.shape
        q = self.q(x).view(B, L, 1, h, d)
        kv = self.kv(ctx).view(B, 1, ctx.shape[1], 2, h, d)
        w = torch.softmax((q * kv[:, :, :, 0]).sum(-1) * d**-0.5, dim=2)  # [B, L, S, h]
        return (w.unsqueeze(-1) * kv[:, :, :, 1]).sum(2).reshape(B, L, D)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (1 + scale) + shift, row by row (x [b, L, D], shift and scale [b|1, D]), as one pass over x (addcmul: a
    broadcast multiply and then an add read and wrote x's size twice, 231 -> 105 us for 1,024 rows of the moons
    network)."""
    return torch.addcmul(shift.unsqueeze(1), x, (1 + scale).unsqueeze(1))


def _gated(x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + gate y, row by row (gate [b|1, D]): the residual with its adaLN-Zero gate, one pass (129 -> 40 us)."""
    return torch.addcmul(x, gate.unsqueeze(1), y)


def _rows_of(v: torch.Tensor | None, r) -> torch.Tensor | None:
    """v[r], or None for no v (a batch without a context)."""
    return None if v is None else v[r]


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + MLP, both modulated by the timestep vector c (adaLN-Zero).  x [B, L, D], c [B, D]."""

    def __init__(self, dim: int, num_heads: int, dropout: float, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attention = Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ffn = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            TanhGELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim),
        )
        self.dropout = nn.Dropout(dropout)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def modulation(self, c: torch.Tensor, t_index: torch.Tensor | None = None) -> torch.Tensor:
        """The adaLN shifts, scales and gates of time vectors c [K, D]: [K, 6D], once per distinct time."""
        return rows.per_time(self.ada, c, t_index)

    def forward(self, x: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """x [B, L, D]; modulation [B|1, 6D]: this block's ``modulation`` rows for x's rows (or one shared by all)."""
        sh1, sc1, g1, sh2, sc2, g2 = modulation.chunk(6, dim=-1)  # [B|1, D]
        x = _gated(x, g1, self.dropout(self.attention(_modulate(self.norm1(x), sh1, sc1))))
        return _gated(x, g2, self.dropout(self.mlp(_modulate(self.norm2(x), sh2, sc2))))

    def mlp(self, h: torch.Tensor) -> torch.Tensor:
        """self.ffn(h); in eval-mode inference its first layer and GELU run as one fused op (``gelu.linear_gelu``)."""
        hidden = None if self.training else linear_gelu(self.ffn[0], h)
        return self.ffn(h) if hidden is None else self.ffn[3](hidden)


class CrossAttentionBlock(nn.Module):
    """x attends to a context: x + Attn(LN(x), LN(context)).  x [B, L, D], context [B, S, D]."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attention = Attention(dim, num_heads, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.attention(self.norm1(x), self.norm2(context)))


class DenoiserNetwork(nn.Module):
    """Shared trunk: tokenizer, timestep MLP, transformer blocks, adaLN output layer.

    forward(x [B, *data_shape], t [B] (or [1], shared by the batch) in [0, 1] (the process's model_time), condition=None,
    t_index=None) -> eps_hat [B, *data_shape].  With t_index [B] (long), t is a table [K] of distinct times and row b
    runs at t[t_index[b]]: the time embedding and every adaLN modulation are computed once per distinct time, then
    picked per row (the sampling engine batches runs at different steps this way, adiff.serving).
    """

    def __init__(
        self, data_shape, embedding_dim, hidden_dim, num_layers, num_heads, dropout, patch_size=1, mlp_ratio=4
    ):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.embedding_dim, self.hidden_dim, self.num_layers = embedding_dim, hidden_dim, num_layers
        self.num_heads, self.dropout = num_heads, dropout
        self.tokenizer = Tokenizer(self.data_shape, patch_size, hidden_dim)
        self.noise_embedding = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.encoder = nn.ModuleList(
            TransformerBlock(hidden_dim, num_heads, dropout, mlp_ratio) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 2 * hidden_dim))
        self.output_proj = nn.Linear(hidden_dim, self.tokenizer.token_dim)
        for m in (self.final_ada[1], self.output_proj):  # the untrained model predicts eps = 0
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def time_vector(self, t: torch.Tensor) -> torch.Tensor:
        return self.noise_embedding(timestep_embedding(t, self.embedding_dim))  # [B, D]

    def _trunk(self, x, c: torch.Tensor, context: torch.Tensor | None, t_index: torch.Tensor | None) -> torch.Tensor:
        """The modulations once per distinct time (c [K, D]), then the rows in chunks of rows.CHUNK_TOKENS tokens, time
        by time where the rows are at a few times (adiff.nn.rows; without autograd: a backward touches every saved
        activation anyway, and through chunks it has more to do)."""
        mods = [block.modulation(c, t_index) for block in self.encoder] + [rows.per_time(self.final_ada, c, t_index)]
        if torch.is_grad_enabled():
            return self._chunk(x, context, [rows.per_row(m, t_index) for m in mods])
        order, chunks = rows.chunks(x, t_index, mods, self.tokenizer.num_tokens)
        xs, cs = (x, context) if order is None else (x[order], _rows_of(context, order))
        outs = [self._chunk(xs[r], _rows_of(cs, r), rows_mods) for r, rows_mods in chunks]
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out if order is None else torch.empty_like(out).index_copy_(0, order, out)

    def _chunk(self, x, context: torch.Tensor | None, mods: list) -> torch.Tensor:
        """The rows of one chunk, as one traced call where one serves (adiff.nn.traced), else eagerly."""
        traced = rows_function(self, x, context, mods, baked=(_SMALL_ATTENTION,))
        if traced is None:
            return self._rows(x, mods, context)
        return traced(x, *([] if context is None else [context]), *mods)

    def _rows(self, x, mods: list, context: torch.Tensor | None) -> torch.Tensor:
        """The trunk over rows x [b, ...] with their context [b, S, D] (or None) and modulation rows: each block's, then
        the output layer's ([b, .], or one row shared by all)."""
        h = self.tokenizer(x)  # [b, L, D]
        for i, block in enumerate(self.encoder):
            h = block(h, mods[i])
            if context is not None:
                h = self.cross_attention[i](h, context)
        shift, scale = mods[-1].chunk(2, dim=-1)
        out = self.output_proj(_modulate(self.final_norm(h), shift, scale))  # [b, L, token_dim]
        return self.tokenizer.from_tokens(out)

    def time_rows(self, t: torch.Tensor, t_index: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The time vectors, once per distinct time: t [K] -> c [K, D].  t_index [B] (or None) maps each row of a
        batch to its time; without it t is [B], or [1] shared by the batch (one time row then broadcasts)."""
        if t_index is not None and (t_index.shape != (batch,) or t_index.dtype != torch.long):
            raise ValueError(
                f"t_index must be a LongTensor of shape [{batch}], got {t_index.dtype} {list(t_index.shape)}"
            )
        return rows.per_time(self.time_vector, t, t_index)  # [K, D]

    def forward(self, x, t, condition=None, t_index=None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class UnconditionalDenoiser(DenoiserNetwork):
    """eps_theta(x_t, t)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition=None, t_index=None) -> torch.Tensor:
        if condition is not None:
            raise ValueError("an unconditional denoiser takes no condition")
        return self._trunk(x, self.time_rows(t, t_index, x.shape[0]), None, t_index)


class ConditionalDenoiser(DenoiserNetwork):
    """eps_theta(x_t, t, y): y is a class label in 0..num_classes-1, or ``num_classes`` for "no condition" (the null
    label used for classifier-free guidance), or a float context [B, S, embedding_dim] / [B, embedding_dim]."""

    def __init__(
        self,
        data_shape,
        embedding_dim,
        hidden_dim,
        num_layers,
        num_heads,
        dropout,
        num_classes,
        patch_size=1,
        mlp_ratio=4,
    ):
        super().__init__(data_shape, embedding_dim, hidden_dim, num_layers, num_heads, dropout, patch_size, mlp_ratio)
        self.num_classes = num_classes
        self.label_embedding = nn.Embedding(num_classes + 1, embedding_dim)  # last row = null condition
        self.condition_embedding = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.cross_attention = nn.ModuleList(
            CrossAttentionBlock(hidden_dim, num_heads, dropout) for _ in range(num_layers)
        )

    @property
    def null_label(self) -> int:
        return self.num_classes

    def context(self, condition, batch: int, device) -> torch.Tensor:
        """condition -> context tokens [B, S, embedding_dim] (before projection)."""
        if condition is None:
            condition = torch.full((batch,), self.null_label, dtype=torch.long, device=device)
        if not torch.is_tensor(condition):
            raise ValueError(f"condition must be a tensor of class labels [B], got {type(condition).__name__}")
        if condition.dtype in (torch.long, torch.int, torch.int16, torch.uint8):
            if condition.shape != (batch,):
                raise ValueError(f"condition labels must have shape [{batch}], got {list(condition.shape)}")
            if condition.numel() and (int(condition.min()) < 0 or int(condition.max()) > self.num_classes):
                raise ValueError(
                    f"condition labels must be in 0..{self.num_classes - 1} (or {self.num_classes} = none), "
                    f"got values in {int(condition.min())}..{int(condition.max())}"
                )
            return self.label_embedding(condition.long()).unsqueeze(1)
        cond = condition if condition.dim() == 3 else condition.unsqueeze(1)
        if cond.shape[0] != batch or cond.shape[-1] != self.embedding_dim:
            raise ValueError(f"condition embeddings must be [B, S, {self.embedding_dim}], got {list(condition.shape)}")
        return cond

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition=None, t_index=None) -> torch.Tensor:
        c = self.time_rows(t, t_index, x.shape[0])  # [K, D]
        ctx = self.condition_embedding(self.context(condition, x.shape[0], x.device))  # [B, S, D]
        c_rows = rows.per_row(c, t_index).unsqueeze(1).expand(ctx.shape[0], -1, -1)  # [B, 1, D]
        ctx = torch.cat([ctx, c_rows], dim=1)  # tokens choose class or time
        return self._trunk(x, c, ctx, t_index)


def build_denoiser(cfg) -> DenoiserNetwork:
    """Denoiser for a ModelConfig."""
    common = dict(
        data_shape=cfg.data_shape,
        embedding_dim=cfg.embedding_dim,
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        dropout=cfg.dropout,
        patch_size=cfg.effective_patch_size,
        mlp_ratio=cfg.mlp_ratio,
    )
    if cfg.model_type == "conditional":
        return ConditionalDenoiser(num_classes=cfg.num_classes, **common)
    return UnconditionalDenoiser(**common)
