"""The trajectory player's payload (components/player.py) and what the reverse tab puts in it: encodings that round-
trip, live messages that carry only their frame, and the size of a real 52-frame, 500-point trajectory."""

import json

import numpy as np
import pytest
import torch

from components import trajectory_view as view
from components.context import AppContext
from components.player import (
    decode_field,
    decode_images,
    decode_points,
    encode_field,
    encode_images,
    encode_points,
    live_message,
    player_payload,
)
from tests.app_helpers import preset_dir_with_fallbacks


def test_points_round_trip_to_a_thousandth_and_mark_the_non_finite():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 50, 2)) * 3
    a[0, 0, 0], a[1, 2, 1], a[2, 3, 0] = np.nan, np.inf, 1e6
    b = decode_points(encode_points(a), a.shape)
    ok = np.isfinite(a) & (np.abs(a) < 30)
    assert np.abs(b[ok] - a[ok]).max() <= 5e-4
    assert np.isnan(b[0, 0, 0]) and np.isnan(b[1, 2, 1]) and b[2, 3, 0] == pytest.approx(32.767)  # clipped, not lost


def test_field_keeps_directions_and_the_largest_length_per_frame():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(4, 289, 2)) * np.array([1.0, 10.0, 100.0, 0.0])[:, None, None]
    data, top = encode_field(s)
    assert top[3] == 0.0 and top[2] == pytest.approx(np.sqrt((s[2] ** 2).sum(-1)).max(), rel=1e-3)
    back = decode_field(data, top, s.shape)
    for k in range(3):  # relative error against the frame's largest vector: 1/127
        assert np.abs(back[k] - s[k]).max() <= top[k] / 127 * 1.01


def test_images_round_trip_with_gaps():
    a = np.linspace(-1, 1, 2 * 5 * 5).reshape(2, 5, 5)
    a[:, 2, :] = np.nan
    b = decode_images(encode_images(a, -1.0, 1.0), -1.0, 1.0, a.shape)
    assert np.isnan(b[:, 2, :]).all() and np.nanmax(np.abs(b - a)) <= 1 / 254 + 1e-9


def test_payload_checks_its_inputs():
    static = {"layers": {"x_t": {"type": "points"}}}
    x = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="kind"):
        player_payload("r", "sounds", static, {"x_t": x}, [2, 0], [0.5, 0.0], ["a", "b"], live=False)
    with pytest.raises(ValueError, match="one entry per frame"):
        player_payload("r", "points", static, {"x_t": x}, [2, 0], [0.5], ["a", "b"], live=False)
    with pytest.raises(ValueError, match="no spec"):
        player_payload("r", "points", static, {"eps": x}, [2, 0], [0.5, 0.0], ["a", "b"], live=False)
    with pytest.raises(ValueError, match="3 frames, expected 2"):
        player_payload("r", "points", static, {"x_t": np.zeros((3, 3, 2))}, [2, 0], [0.5, 0.0], ["a", "b"], live=False)


def test_live_messages_carry_the_static_part_once():
    static = {"layers": {"x_t": {"type": "points"}}, "panels": [[{"title": "x_t", "layers": ["x_t"]}]]}
    first = live_message("r", "points", static, {"x_t": np.zeros((4, 2))}, 10, 0.9, "step 1", 0)
    later = live_message("r", "points", static, {"x_t": np.ones((4, 2))}, 5, 0.5, "step 2", 1)
    assert first["static"] is static and "static" not in later
    assert later["live"] and later["frames"]["count"] == 1 and later["frames"]["t"] == [5]
    assert decode_points(later["frames"]["data"]["x_t"], (1, 4, 2)).tolist() == np.ones((1, 4, 2)).tolist()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    with preset_dir_with_fallbacks(tmp_path_factory.mktemp("presets")):
        yield AppContext(device="cpu")


@pytest.mark.parametrize("preset, limit_mb", [("moons", 1.5), ("8gaussians", 1.5), ("glyphs", 1.5)])
def test_a_fifty_frame_trajectory_fits_the_budget(ctx, preset, limit_mb):
    """The reverse tab's default run (DDIM-100, 500 points; 16 glyphs) keeps 52 frames: with x_t, x0, eps and the
    score field (and the ideal denoiser's for 8gaussians) the whole message stays under 1.5 MB of JSON."""
    session = ctx.store.get(None)
    model, info = ctx.model(preset, session)
    n = 500 if info.kind == "points" else 16
    cond = torch.arange(n) % info.num_classes if info.conditional else None
    _, traj = model.generate(
        n,
        condition=cond,
        seed=0,
        sampler="ddim",
        num_steps=100,
        keep_every=2,
        cfg_scale=2.0 if cond is not None else None,
    )
    ideal = view.ideal_mixture(info, None)
    static = view.player_static(model, info, "title", ideal is not None, n)
    arrays = view.trajectory_arrays(model, info.kind, traj.timesteps, traj.x, traj.x0_pred, traj.eps_pred, ideal=ideal)
    if info.kind == "images":
        view.image_specs(static, arrays)
    sig = traj.noise_levels.tolist()
    msg = player_payload(
        "r", info.kind, static, arrays, traj.timesteps, sig, view.frame_labels(traj.timesteps, sig, arrays), live=False
    )
    size = len(json.dumps(msg))
    assert msg["frames"]["count"] == len(traj) == 52
    assert size <= limit_mb * 1e6, size
    if info.kind == "points":
        assert set(msg["frames"]["data"]) >= {"x_t", "x0_pred", "eps", "score"}
        x = decode_points(msg["frames"]["data"]["x_t"], (52, n, 2))
        assert np.abs(x - traj.x.numpy()).max() < 1e-3  # what the browser draws is the trajectory
