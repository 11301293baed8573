"""The trajectory player: a run is sent to the browser once, compactly, and scrubbed and played there.

The server side (this module) is pure: plain numpy arrays in, one JSON-able dict out.  The browser side is
``assets/player.js``, run by a ``gr.HTML`` component (``player_component``) when it mounts: it decodes the payload,
draws the frames on a canvas and owns the frame slider, Play and Pause, so scrubbing and playback never ask the
server for anything.  The same payload format carries a streamed frame while a sampler runs (``live=True``: one
frame, the static parts only in the first message), so the page redraws a few thousand points instead of
re-rendering a whole plotly figure.

Payload (version 1)::

    {"v": 1, "id": run id, "live": bool, "seq": n, "kind": "points" | "images",
     "static": {"title", "range": [lo, hi], "panels": [[panel, ...] per row], "layers": {name: layer spec},
                "schedule": {"name", "T", "t", "abar", "sigma"} | None, "legend": [[label, colour], ...],
                "notes": [str, ...]},                                     # only in the first live message
     "frames": {"count": K, "t": [K], "sigma": [K], "labels": [K] str, "active": k,
                "data": {name: base64 array [K, ...]}, "scale": {name: [K] float (fields only)}}}

Encodings (little-endian, base64): points int16 of round(value * 1000) ([K, N, 2], -32768 = not finite);
a field int8 of 127 * s / max|s| per frame ([K, G*G, 2]) with max|s| per frame in ``scale``; images uint8
of round(254 * (v - lo) / (hi - lo)) ([K, H, W], 255 = the gap between tiles).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "POINT_SCALE",
    "encode_points",
    "decode_points",
    "encode_field",
    "decode_field",
    "encode_images",
    "decode_images",
    "player_payload",
    "live_message",
    "player_component",
    "PLAYER_JS",
    "time_value",
]

POINT_SCALE = 1000  # points are sent as int16 thousandths: +-32.767 data units, 0.001 resolution
_NAN16 = -32768
_GAP8 = 255
PLAYER_JS = (Path(__file__).resolve().parent.parent / "assets" / "player.js").read_text()
PLAYER_TEMPLATE = "<div class='adiff-player' data-state='empty'></div>"


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def encode_points(a) -> str:
    """Points [..., 2] (float) -> base64 of little-endian int16 thousandths, clipped to +-32.767."""
    a = np.asarray(a, dtype=np.float64)
    q = np.clip(np.round(a * POINT_SCALE), -32767, 32767)
    q = np.where(np.isfinite(a), q, _NAN16).astype("<i2")
    return _b64(q)


def decode_points(s: str, shape: Sequence[int]) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(s), dtype="<i2").reshape(shape).astype(np.float64)
    return np.where(q == _NAN16, np.nan, q / POINT_SCALE)


def encode_field(s) -> tuple[str, list[float]]:
    """A vector field per frame [K, G*G, 2] -> (base64 int8 of 127 * s / max|s| of its frame, max|s| per frame)."""
    s = np.nan_to_num(np.asarray(s, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.sqrt((s**2).sum(-1))  # [K, G*G]
    top = mag.max(axis=-1) if mag.size else np.zeros(s.shape[0])  # [K]
    rel = s / np.where(top > 0, top, 1.0)[:, None, None]
    return _b64(np.clip(np.round(rel * 127), -127, 127).astype("i1")), [float(f"{v:.4g}") for v in top]


def decode_field(s: str, scale: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(s), dtype="i1").reshape(shape).astype(np.float64)
    return q / 127 * np.asarray(scale, dtype=np.float64)[:, None, None]


def encode_images(a, lo: float, hi: float) -> str:
    """Tiled images [K, H, W] (NaN = gap between tiles) -> base64 uint8 of 254 * (v - lo) / (hi - lo), 255 = gap."""
    a = np.asarray(a, dtype=np.float64)
    q = np.clip(np.round((np.nan_to_num(a, nan=lo) - lo) / (hi - lo) * 254), 0, 254)
    return _b64(np.where(np.isnan(a), _GAP8, q).astype("u1"))


def decode_images(s: str, lo: float, hi: float, shape: Sequence[int]) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(s), dtype="u1").reshape(shape).astype(np.float64)
    return np.where(q == _GAP8, np.nan, lo + q / 254 * (hi - lo))


def time_value(t) -> int | float:
    """A process time for JSON: an integer step stays an int, a continuous time keeps 4 decimals."""
    t = float(t)
    return int(t) if t.is_integer() else round(t, 4)


def _encode_layer(spec: dict, arr) -> tuple[str, list[float] | None]:
    kind = spec["type"]
    if kind == "points":
        return encode_points(arr), None
    if kind == "field":
        return encode_field(arr)
    if kind == "image":
        return encode_images(arr, spec["lo"], spec["hi"]), None
    raise ValueError(f"layer type must be points, field or image, got {kind!r}")


def player_payload(
    run_id: str,
    kind: str,
    static: dict,
    arrays: dict[str, Any],
    t: Sequence[int],
    sigma: Sequence[float],
    labels: Sequence[str],
    *,
    live: bool,
    seq: int = 0,
    active: int | None = None,
    alpha: Sequence[float] | None = None,
) -> dict:
    """One message for the player: K frames of the layers named in ``static["layers"]`` (arrays [K, ...]).

    ``static`` (panels, layer specs, schedule, legend) is what does not change during a run; a complete trajectory
    carries it, a live stream only in its first message (see ``live_messages``).  Layers of type "paths" carry no
    data of their own: the browser draws them from the frames of the layer they follow.  ``t`` is the process's
    time (an integer step of a VP schedule, a float in [0, 1] for a flow); ``alpha`` the schedule plot's solid curve
    at each frame (a flow's α_t; without it the browser draws ᾱ_t = 1 − σ_t², right for variance preserving)."""
    if kind not in ("points", "images"):
        raise ValueError(f"kind must be points or images, got {kind!r}")
    K = len(t)
    if not (len(sigma) == len(labels) == K) or K < 1:
        raise ValueError(f"t, sigma and labels must have one entry per frame, got {K}, {len(sigma)}, {len(labels)}")
    specs = static["layers"]
    data, scale = {}, {}
    for name, arr in arrays.items():
        if name not in specs:
            raise ValueError(f"layer {name!r} has no spec in static['layers'] ({sorted(specs)})")
        if len(arr) != K:
            raise ValueError(f"layer {name!r} has {len(arr)} frames, expected {K}")
        data[name], sc = _encode_layer(specs[name], arr)
        if sc is not None:
            scale[name] = sc
    frames = {
        "count": K,
        "t": [time_value(v) for v in t],
        "sigma": [float(f"{v:.4g}") for v in sigma],
        "labels": list(labels),
        "active": K - 1 if active is None else int(active),
        "data": data,
        "scale": scale,
    }
    if alpha is not None:
        if len(alpha) != K:
            raise ValueError(f"alpha must have one entry per frame, got {len(alpha)} for {K}")
        frames["a"] = [float(f"{v:.4g}") for v in alpha]
    return {
        "v": 1,
        "id": str(run_id),
        "live": bool(live),
        "seq": int(seq),
        "kind": kind,
        "static": static,
        "frames": frames,
    }


def live_message(
    run_id: str,
    kind: str,
    static: dict,
    arrays: dict[str, Any],
    t,
    sigma: float,
    label: str,
    seq: int,
    alpha: float | None = None,
) -> dict:
    """Message ``seq`` of a live stream: one frame (arrays without the frame axis); the static part rides only in
    message 0 (the browser keeps it for the rest of the run)."""
    msg = player_payload(
        run_id,
        kind,
        static,
        {k: np.asarray(v)[None] for k, v in arrays.items()},
        [t],
        [sigma],
        [label],
        live=True,
        seq=seq,
        alpha=None if alpha is None else [alpha],
    )
    if seq > 0:
        del msg["static"]
    return msg


def player_component(elem_id: str, **kw):
    """The gr.HTML that hosts a player (its script is assets/player.js)."""
    import gradio as gr

    classes = ["adiff-figure", "adiff-player-block"] + list(kw.pop("elem_classes", []) or [])
    return gr.HTML(
        None,
        html_template=PLAYER_TEMPLATE,
        js_on_load=PLAYER_JS,
        elem_id=elem_id,
        elem_classes=classes,
        container=False,
        padding=False,
        **kw,
    )


def _load_js(elem_id: str) -> str:
    """Browser code: the player in ``elem_id`` fetches a finished run's file."""
    return f"""(f) => {{ const p = document.querySelector('#{elem_id} .adiff-player')?.adiffPlayer;
  if (p && f && f.url) p.load(f.url); }}"""


def _stop_js(elem_id: str) -> str:
    """Browser code for Stop: the player draws nothing more of this run, and the status says so at once."""
    return f"""() => {{ document.querySelector('#{elem_id} .adiff-player')?.adiffPlayer?.freeze();
  return '■ **stopped**: no more frames are drawn; the server is ending the run…'; }}"""


def wire_player_run(ctx, run, elem_id: str, start, inputs, outputs, status, data_file, stop, stop_outputs, api_name):
    """The events of a streamed run that plays in a player (reverse, compare): the main button starts ``start``
    (api ``api_name``, raw values, the sampling pool; the status line says "queued" at once: RunStop.click); Stop freezes the player in the browser at once and cancels the
    run, then the server's ``stop`` says where it got to (api ``<api_name>_stop``); a finished run's file is fetched
    by the player when ``data_file`` changes.  Returns the run's event."""
    from .wiring import EVENT

    event = run.click(status, start, inputs, outputs, api_name=api_name, **EVENT, **ctx.sampling)
    run.stop.click(None, None, status, js=_stop_js(elem_id), cancels=[event], api_visibility="private").then(
        stop, None, stop_outputs, api_name=f"{api_name}_stop", **ctx.instant
    )
    data_file.change(None, data_file, None, js=_load_js(elem_id), api_visibility="private")
    return event
