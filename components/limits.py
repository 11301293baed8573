"""Upper bounds on every input, and the app's other fixed numbers, in one place (DESIGN.md habit 19): the tabs, the
request parsers and the link reader all read them here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIMITS", "Limits", "PREVIEW_FLOPS_PER_SECOND"]


@dataclass(frozen=True)
class Limits:
    """Upper bounds on every input (a workshop server must survive thirty people pressing buttons)."""

    points: int = 2000  # samples of a 2-D model per run
    images: int = 64  # samples of an image model per run
    forward_points: int = 5000  # points in the forward-process view
    forward_images: int = 8  # glyph rows in the forward strip
    schedule_T: int = 10_000  # T in the schedule explorer (adiff.diffusion.schedules.MAX_STEPS)
    custom_chars: int = 20_000  # custom schedule text
    expression_chars: int = 200  # reward expression (adiff.steering.expressions.MAX_EXPRESSION_CHARS)
    reward_params_chars: int = 400
    seed: int = 2**31 - 1
    guidance_scale: float = 100.0
    cfg_scale: float = 20.0
    recurrence: int = 5
    adapt_steps: int = 500
    adapt_batch: int = 1024
    buffer_capacity: int = 5000
    train_steps: int = 20_000
    train_batch: int = 1024
    train_T: int = 2000
    upload_bytes: int = 64 * 2**20
    upload_params: int = 50_000_000  # default of --max-upload-params (parameters of one denoiser)
    upload_tokens: int = 256  # tokens per sample of an uploaded model (the glyphs preset has 16)
    preview_points: int = 400  # samples in the Train tab's preview of a 2-D model
    preview_images: int = 16  # ... of an image model
    preview_steps: int = 25  # DDIM steps of that preview
    # The Train tab's film (components/train/film.py): snapshots of the learned field and of samples during a 2-D run
    film_frames: int = 30  # snapshots per run (every ceil(steps / film_frames) steps), plus the untrained network
    film_points: int = 400  # samples per snapshot (fixed seed: the frames are comparable)
    film_steps: int = 10  # DPM-Solver++ steps of each snapshot's samples
    film_sigma: float = 0.3  # the noise level sigma_t at which the film draws the learned field
    # The Train tab's reflow (components/train/reflow.py): the pairs, the teacher's ODE steps per pair, training steps
    reflow_pairs: int = 20_000
    reflow_ode_steps: int = 100
    reflow_steps: int = 5000
    reflow_eval_points: int = 1000  # one-step samples (and data points) of its MMD² before and after
    preview_seconds: float = 3.0  # what the preview of an uploaded model may cost, estimated from its FLOPs
    # The Train tab's drawing (components/train/strokes.py): every count is checked before anything is parsed further
    # or drawn.  The canvas sends its strokes as coordinates; the server draws them onto a small raster of its own.
    drawing_side: int = 400  # the canvas in the page, pixels a side (the strokes' coordinates)
    drawing_max_side: int = 2048  # w and h of a drawing sent through the API
    drawing_raster: int = 200  # the raster the strokes are drawn onto (its longer side), before points are sampled
    drawing_strokes: int = 500  # strokes in one drawing
    drawing_stroke_points: int = 8000  # points of all strokes together (the canvas keeps one every 2 pixels)
    drawing_brush: int = 60  # brush width, canvas pixels
    drawing_chars: int = 2 * 2**20  # a drawing sent as text (JSON, or a PNG data URL): its length, before parsing
    complete_examples: int = 30  # the Complete tab's real digits: the first this many held-out examples of each class
    frames: int = 50  # at most this many steps kept per trajectory (plus the final sample: frames + 1 in all)
    # Streaming (components/streaming.py): every streamed update costs the page main-thread time and the server the
    # CPU it shares, so a run sends at most one update per ``stream_interval_s`` and about ``stream_messages`` in all
    # (a slow run spaces them out), and the sampling runs in progress share ``stream_rate`` updates per second (each of
    # n runs sends at most one per n / stream_rate s: a message costs the server ~6 ms of the CPU the runs share, and
    # thirty runs sending 12 each all finished ~1 s later); heavy figures (thousands of points over a heatmap) at most
    # every ``figure_interval_s``.
    sampling_runs: int = 64  # sampling runs in progress at once (they share the engine's batched calls)
    # The engine starts a round this long after its oldest call (or after the last round ended) at most.  In a busy room
    # the next round's calls are all queued when a round ends (the runs alternate in two groups), so waiting only
    # idles the cores: 5 -> 1 ms took 30 /generate in the workshop from 5.85 / 5.76 to 5.28 / 5.08 s (paired).
    engine_wait_ms: float = 1.0
    stream_interval_s: float = 0.2
    stream_messages: int = 12
    stream_rate: float = 15.0
    figure_interval_s: float = 3.0
    # The Density tab (components/density): log p_theta by the probability-flow ODE, one RK4 step = 4 network calls
    # and 2 backward passes per point; bench/bench_density.py measured the defaults (errors and CPU seconds).
    density_steps: int = 64  # ODE steps at most
    density_steps_vp: int = 32  # the default for a VP model (16 steps left errors of several nats on moons' map)
    density_steps_flow: int = 16  # ... and for a flow
    density_grid: int = 60  # grid side at most (60 x 60 = 3,600 points)
    density_grid_min: int = 10
    density_grid_default: int = 40
    density_chunk: int = 200  # grid points per chunk of the streamed map (5-9 % more CPU than one batch)
    density_heldout: int = 1000  # held-out points for the NLL
    density_heldout_seed: int = 2**40  # the held-out draw is make_dataset(..., seed=this + seed): never a training draw
    density_clip_nats: float = 10.0  # the maps' colour scale spans this many nats below their top


LIMITS = Limits()


# Forward FLOP/s assumed when estimating an upload's preview.  Measured on the 2-core CI machine, one thread, load
# average 3.4: 37-48 GFLOP/s for the presets and 256-token image models (model_cost FLOPs over wall time); half of
# that is assumed, as the cores are shared by concurrent jobs.  On a GPU, a conservative 0.5 TFLOP/s.
PREVIEW_FLOPS_PER_SECOND = {"cpu": 2e10, "cuda": 5e11}
