"""Training as a film (components/train/film.py): through the Train tab's own handler, a 2-D run keeps a snapshot of
the untrained network and one every ceil(steps / LIMITS.film_frames) steps and at the last, and plays them in the
shared player's payload (a frame per snapshot, labelled with its step); image data has no film."""

import numpy as np
import torch

from components.context import AppContext
from components.limits import LIMITS
from components.player import decode_field, decode_points
from components.score_fields import FIELD_GRID
from components.train import handlers
from components.train.film import FILM_SAMPLER, FILM_SEED, film_time
from components.train.shared import state_of
from tests.app_helpers import torch_threads


def _run(ctx, dataset="moons", steps=20, process="vp", prediction="epsilon", seed=0):
    session = ctx.store.get(None)
    req = handlers.TrainRequest.parse(
        ctx, session, dataset, "linear", 100, "tiny", False, steps, 32, 2e-3, seed, process, prediction
    )
    return session, req, list(handlers.train(ctx, session, req))


def test_film_time_is_the_noise_level_asked_for():
    from adiff.diffusion import make_process

    assert film_time(make_process("flow"), 0.3) == 0.3  # a flow's sigma_t = t
    with torch_threads(1):
        ctx = AppContext(device="cpu")
        _, req, _ = _run(ctx, steps=1)
        model = req.build("cpu", (2,))
    proc = model.process
    t = film_time(proc, LIMITS.film_sigma)
    gap = abs(proc.coefficients(t)[1] - LIMITS.film_sigma)
    assert 1 <= t <= proc.T and gap <= abs(proc.coefficients(t - 1)[1] - LIMITS.film_sigma)
    assert gap <= abs(proc.coefficients(t + 1)[1] - LIMITS.film_sigma)  # T = 100: the nearest step


def test_the_film_has_a_frame_per_snapshot_with_steps_increasing():
    with torch_threads(1):
        ctx = AppContext(device="cpu")
        session, req, outs = _run(ctx, steps=70)
        film = state_of(session).film
        every = int(np.ceil(70 / LIMITS.film_frames))  # 3: frames at 0, 3, ..., 69 and the last step, 70
        assert film.every == every and film.steps == list(range(0, 70, every)) + [70]
        payloads = [o.film for o in outs if o.film is not None]
        counts = [p["frames"]["count"] for p in payloads]
        assert counts == sorted(counts) and len(set(counts)) == len(counts) and counts[-1] == len(film)
        P = payloads[-1]
        F, K = P["frames"], len(film)
        assert F["t"] == film.steps and F["labels"][0].startswith("step 0 of 70") and F["active"] == K - 1
        assert set(P["static"]["layers"]) == {"field", "data", "samples"}
        field = decode_field(F["data"]["field"], F["scale"]["field"], (K, FIELD_GRID**2, 2))
        np.testing.assert_allclose(field, np.stack(film.fields), atol=np.max(F["scale"]["field"]) / 100)
        pts = decode_points(F["data"]["samples"], (K, LIMITS.film_points, 2))
        np.testing.assert_allclose(
            pts, np.clip(np.stack([s.numpy() for s in film.samples]), -32.767, 32.767), atol=1e-3
        )
        # the first frame is the untrained network's samples from the film's fixed noise
        fresh = req.build("cpu", (2,))
        with torch.no_grad():
            x0, _ = fresh.generate(
                LIMITS.film_points, seed=FILM_SEED, sampler=FILM_SAMPLER, num_steps=LIMITS.film_steps
            )
        torch.testing.assert_close(film.samples[0], x0)
        assert outs[-1].status["film_frames"] == K and 0 < outs[-1].status["film_share"] < 1


def test_a_flow_films_its_velocity_and_image_data_has_no_film():
    with torch_threads(1):
        ctx = AppContext(device="cpu")
        session, _, outs = _run(ctx, steps=5, process="flow", prediction="velocity")
        film = state_of(session).film
        assert (
            film.velocity
            and film.t == LIMITS.film_sigma
            and "velocity" in outs[-1].film["static"]["panels"][0][0]["title"]
        )
        session, _, outs = _run(ctx, dataset="glyphs", steps=2)
        assert state_of(session).film is None and all(o.film is outs[0].film for o in outs)  # resent, not skipped
        assert "2-D" in outs[0].film["static"]["title"] and outs[0].film["frames"]["count"] == 1
        assert "film_frames" not in outs[-1].status
