"""Tab 8, adaptation: the views.  Tensors of a run in; plotly figures, gallery items and words out (pure: no widgets,
no sessions).

* ``make_adaptation_figure``: the live curves (mean and max reward, loss, distances to the data and the target).
* ``buffer_view`` -> ``make_buffer_figure``: the trajectory buffer of a 2-D model, coloured by priority over the
  reward heatmap; ``gallery_items``: the buffer of an image model, best first, with captions.
* ``before_after`` -> ``make_before_after_figure``: the same seed before and after adaptation (guidance's schema).
* ``adaptation_text``: a step (or the end) of a run in words; ``mean_reward``: a reward's mean over samples.
"""

from __future__ import annotations

import torch
from PIL import Image

from adiff.data import PLOT_RANGE

from ..arrays import points, tile_images
from ..figure_json import FigureJSON
from ..plotting import COLORS, DEFAULT_RANGE, PRIORITY_COLORSCALE, _color_titles, _figure, _grid, _on, _ref
from ..plotting import make_message_figure as message_figure
from ..reward_figures import make_guidance_figure, reward_heatmap
from ..summaries import describe_mmd2, fmt

__all__ = [
    "BUFFER_SHOWN",
    "GALLERY_SHOWN",
    "make_adaptation_figure",
    "make_buffer_figure",
    "make_before_after_figure",
    "message_figure",
    "buffer_view",
    "gallery_items",
    "before_after",
    "mean_reward",
    "adaptation_text",
]

BUFFER_SHOWN = 600  # buffer points drawn (the best ones)
GALLERY_SHOWN = 24  # buffer images shown
BEFORE_AFTER_IMAGES = 36  # images tiled in each before/after panel


# ---------------------------------------------------------------------------------------------- figures
def make_adaptation_figure(history: dict) -> FigureJSON:
    """history: {"step": [...], "reward_mean": [...], "reward_max": [...], "loss": [...],
    "distance_to_data": [...], "distance_to_target": [...] (optional)} -> three panels of live curves."""
    steps = list(history.get("step", []))
    if not steps:
        return message_figure("Press Start: reward, loss and distance-to-data curves appear here, one point per step.")
    layout = _grid(
        1,
        3,
        ["reward of samples (λ = 0, fixed seed)", "loss (weighted ε-MSE + anchor)", "distance to data (MMD²)"],
        hspace=0.08,
    )
    _color_titles(layout, ["reward", "loss", "distance"])
    mode = "lines+markers" if len(steps) < 40 else "lines"
    traces = []

    def line(key, name, color, dash="solid", n=1):
        if history.get(key):
            traces.append(
                _on(
                    {
                        "type": "scatter",
                        "x": steps,
                        "y": list(history[key]),
                        "mode": mode,
                        "name": name,
                        "line": {"color": color, "width": 3.5, "dash": dash},
                        "marker": {"size": 7},
                        "hovertemplate": f"{name}<br>step %{{x}}<br>%{{y:.4g}}<extra></extra>",
                    },
                    n,
                )
            )

    line("reward_mean", "mean reward", COLORS["reward"])
    line("reward_max", "max reward", COLORS["reward"], "dot")
    line("loss", "loss", COLORS["loss"], n=2)
    line("distance_to_data", "to the data", COLORS["distance"], n=3)
    line("distance_to_target", "to the tilted target", COLORS["target"], "dash", n=3)
    for n in (1, 2, 3):
        layout[_ref(n)[2]]["title"] = {"text": "adaptation step"}
    return _figure(traces, layout, 430)


def make_buffer_figure(data: dict) -> FigureJSON:
    """The trajectory buffer (points): {"points": {"x","y"}, "priority": [...], "reward": [...], "range",
    "reward_grid": optional {"x","y","z"}, "capacity": int}; markers coloured by priority."""
    n = len(data["points"]["x"])
    if n == 0:
        return message_figure("The buffer is empty: it fills with the best fresh samples as adaptation runs.")
    rng = data.get("range", DEFAULT_RANGE)
    layout = _grid(1, 1, None, square=True, rng=rng)
    traces = []
    if data.get("reward_grid"):
        traces.append(reward_heatmap(data["reward_grid"], showscale=False, n=1))
    pr, rw = list(data["priority"]), list(data["reward"])
    traces.append(
        {
            "type": "scatter",
            "x": list(data["points"]["x"]),
            "y": list(data["points"]["y"]),
            "mode": "markers",
            "name": "buffer",
            "customdata": [[r, p] for r, p in zip(rw, pr)],
            "marker": {
                "color": pr,
                "colorscale": PRIORITY_COLORSCALE,
                "size": 8,
                "showscale": True,
                "line": {"color": "#333333", "width": 0.5},
                "colorbar": {"title": {"text": "priority"}, "thickness": 16},
            },
            "hovertemplate": "x = %{x:.3f}, y = %{y:.3f}<br>reward %{customdata[0]:.4g}<br>priority %{customdata[1]:.3g}<extra></extra>",
        }
    )
    size, cap = data.get("size", n), data.get("capacity")
    shown = f"{n} best of {size}" if size > n else f"{n}"
    return _figure(
        traces,
        layout,
        560,
        f"buffer: {shown} samples{f' (capacity {cap})' if cap else ''} · colour = priority",
        legend=False,
    )


def make_before_after_figure(data: dict) -> FigureJSON:
    """Samples from the same seed before and after adaptation; the schema of ``make_guidance_figure`` with panel
    keys "base" (before) and "steered" (after)."""
    return make_guidance_figure(data)


# ---------------------------------------------------------------------------------------------- tensors -> data
def buffer_view(snapshot, kind: str, grid: dict | None, capacity: int) -> dict | None:
    """BufferSnapshot -> data for make_buffer_figure (points only; images use the gallery)."""
    if kind != "points":
        return None
    k = min(BUFFER_SHOWN, len(snapshot.rewards))
    return {
        "points": points(snapshot.samples[:k]) if k else {"x": [], "y": []},
        "priority": snapshot.priorities[:k].tolist(),
        "reward": snapshot.rewards[:k].tolist(),
        "reward_grid": grid,
        "range": PLOT_RANGE,
        "capacity": capacity,
        "size": len(snapshot.rewards),
    }


def gallery_items(
    snapshot, num_classes: int | None = None, shown: int = GALLERY_SHOWN
) -> list[tuple[Image.Image, str]]:
    """The best buffer images (sorted by reward, as the snapshot is) with 'r=reward p=priority [y=class]' captions."""
    out = []
    for i in range(min(shown, len(snapshot.rewards))):
        a = snapshot.samples[i].float().clamp(-1, 1)  # [1, H, W] or [H, W]
        a = a[0] if a.dim() == 3 else a
        gray = ((1 - (a + 1) / 2) * 255).round().to(torch.uint8).numpy()  # ink black on white
        img = Image.fromarray(gray, mode="L").resize((96, 96), Image.NEAREST)
        caption = f"r={float(snapshot.rewards[i]):.2f} p={float(snapshot.priorities[i]):.3f}"
        md = snapshot.metadata[i] if i < len(snapshot.metadata) else None
        if isinstance(md, dict) and "label" in md and num_classes is not None:
            caption += f" y={md['label'] if md['label'] < num_classes else '∅'}"  # ∅: the null (unconditional) label
        out.append((img, caption))
    return out


def mean_reward(reward, x: torch.Tensor) -> float:
    """The mean of ``reward`` over samples x [n, *data_shape]."""
    with torch.no_grad():
        return float(reward(x.float()).float().mean())


def before_after(kind: str, reward, grid: dict | None, before: torch.Tensor, after: torch.Tensor, step: int) -> dict:
    """Data for make_before_after_figure: the base model's samples and the adapted model's (the same seed, λ = 0),
    each with its mean reward; 2-D samples over the reward heatmap, images tiled."""
    before, after = before.detach().float().cpu(), after.detach().float().cpu()
    titles = (("base", "before (base model)", before), ("steered", f"after {step} steps", after))
    if kind == "points":
        panels = [
            {"key": k, "title": t, "points": points(x), "mean_reward": mean_reward(reward, x)} for k, t, x in titles
        ]
    else:
        k = min(BEFORE_AFTER_IMAGES, len(before))
        panels = [
            {"key": key, "title": t, "z": tile_images(x[:k]), "mean_reward": mean_reward(reward, x)}
            for key, t, x in titles
        ]
    return {
        "kind": kind,
        "panels": panels,
        "reward": grid,
        "range": PLOT_RANGE,
        "title": "the same seed, λ = 0, before and after",
    }


# ---------------------------------------------------------------------------------------------- words
def adaptation_text(s: dict) -> str:
    """A step of a run (its status dict) in words: the reward's gain, the two distances and the buffer."""
    state = {"running": "… **adapting**", "done": "✓ **done**", "preparing": "… **preparing**"}.get(
        s.get("status"), s.get("status", "")
    )
    if "reward_mean" not in s:
        return f"{state}: copying the model and drawing the 'before' samples…"
    gain = (s["reward_mean"] - s["base_mean_reward"]) if s.get("base_mean_reward") is not None else None
    parts = [
        f"{state}: step {s['step']} ({s['steps_this_run']} of {s['of']} in this run, {s['elapsed_s']:.0f} s). "
        f"Mean reward of fresh samples {fmt(s['reward_mean'])}"
        + (f" ({'+' if gain >= 0 else ''}{fmt(gain, 2)} since the base model)" if gain is not None else "")
        + "."
    ]
    for key, what in (("distance_to_data", "the data"), ("distance_to_target", "the tilted target")):
        if s.get(key) is None:
            continue
        first = s.get(key + "_first")
        trend = f" It was {fmt(first, 2)} after the first step." if first is not None and s["step"] > 1 else ""
        d = describe_mmd2(s[key], s.get(key + "_se"), what)
        parts.append(d[:1].upper() + d[1:] + trend)
    if s.get("distance_to_target") is not None:
        parts.append(
            "The adapted model should move away from the data towards the tilted target: the first distance "
            "may grow while the second falls."
        )
    parts.append(f"Buffer: {s['buffer_size']} samples kept; {s['reward_queries']} reward queries so far.")
    return "\n\n".join(parts)
