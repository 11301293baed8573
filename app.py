"""adiff: an interactive visual explorer for diffusion models.

    python app.py [--host 0.0.0.0] [--port 7860] [--share] [--device auto|cpu|cuda] [--root-path /adiff]
                  [--max-heavy-jobs 2] [--max-queue 256] [--max-sessions 200] [--max-upload-params 50000000]

CLI flags -> build the Blocks from components/ -> queue -> launch.  Nothing else lives here: every tab is a module
in components/ exposing ``build(ctx)``; ``build_app`` is what tests launch in-process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue rebuilds a pandas table of its last 10,000 events after every event, for a monitoring page this app
# does not enable (launch(enable_monitoring=...)): ~2.5 ms of the shared CPU per event, ~7 ms once the table is full,
# and pandas imported by the first event.  Read when the queue is made (at launch): never, here.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from components import (
    adaptation,
    compare,
    complete,
    density,
    forward,
    guidance,
    links,
    reverse,  # noqa: E402
    schedules,
    train,
)
from components.columns import fit_script
from components.context import AppContext  # noqa: E402
from components.help import glossary_markdown, page_script  # noqa: E402
from components.limits import LIMITS
from components.state import SessionStore  # noqa: E402

ROOT = Path(__file__).resolve().parent
CSS_PATH = ROOT / "assets" / "app.css"
HEADER = "# adiff · see how diffusion models work"
TAGLINE = (
    "schedules → forward → reverse → compare → density → guidance → completion → adaptation → training"
    " · your session is your own"
)


def build_app(
    device: str = "auto",
    max_heavy_jobs: int = 2,
    max_queue: int = 256,
    max_sessions: int = 200,
    max_upload_params: int = LIMITS.upload_params,
) -> gr.Blocks:
    """The whole app as a Blocks, queued (heavy jobs share ``max_heavy_jobs`` slots), not launched: launch it with
    ``demo.launch(**launch_kwargs(demo))``, which bounds Gradio's own per-session state by ``max_sessions`` too."""
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available")
    if max_heavy_jobs < 1:
        raise ValueError(f"max_heavy_jobs must be >= 1, got {max_heavy_jobs!r}")
    if max_upload_params < 1:
        raise ValueError(f"max_upload_params must be >= 1, got {max_upload_params!r}")
    ctx = AppContext(
        device=device,
        max_heavy_jobs=max_heavy_jobs,
        store=SessionStore(max_sessions=max_sessions),
        max_upload_params=max_upload_params,
        engine_workers=engine_workers(device),
    )
    # delete_cache: files served to browsers (GIFs, checkpoints, gallery images) older than an hour are removed
    # every half hour, so a day-long workshop does not fill the disk
    with gr.Blocks(
        title="adiff · diffusion explorer", analytics_enabled=False, delete_cache=(1800, 3600), fill_width=True
    ) as demo:
        # the header and the glossary share one line (the glossary, opened, takes a line of its own: app.css)
        with gr.Row(elem_id="masthead"):
            gr.Markdown(HEADER, elem_id="header")
            gr.Markdown(TAGLINE, elem_id="tagline")
            with gr.Accordion("Glossary", open=False, elem_id="glossary"):
                gr.Markdown(glossary_markdown())
            page_script()
            fit_script()
        notice = gr.Markdown(visible=False, elem_id="link-notice")
        # "wrap": on a phone every tab name stays visible (the default hides the overflow behind "…")
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs"):
            tab_links = [
                tab.build(ctx)
                for tab in (
                    schedules,
                    forward,
                    reverse,
                    compare,
                    density,
                    guidance,
                    complete,
                    adaptation,
                    train,
                )
            ]
        links.wire(demo, [link for link in tab_links if link is not None], notice, ctx.instant)

        def release_session(request: gr.Request):  # a closed tab releases its models, trajectories and files
            ctx.store.drop_request(request)

        demo.unload(release_session)
    # api_open=False: every event, from a browser or an API client, goes through the queue and its limits (the
    # direct /gradio_api/run/* route refuses them); every event is queued (no queue=False), so nothing skips it
    demo.queue(default_concurrency_limit=ctx.light_jobs, max_size=max_queue, api_open=False)
    demo.adiff_context = ctx  # for tests and operators: sessions, limits
    return demo


def engine_workers(device: str) -> int:
    """Threads that compute each of the sampling engine's batched forwards: on a CPU, one per group of torch's
    intra-op threads (small networks scale poorly across cores, so the cores share out the rows instead); one on a
    GPU."""
    if str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))


def launch_kwargs(demo: gr.Blocks) -> dict:
    """What belongs in launch() in Gradio 6, shared by main() and tests: the look (theme, css), the upload limit,
    Gradio's own per-session state bounded like ours (``state_session_capacity``, default 10,000), and error
    messages sent to every caller (``show_error``: a raw HTTP refusal says why instead of ``{"error": null}``)."""
    kw = {
        "theme": gr.themes.Default(text_size="lg"),
        "max_file_size": LIMITS.upload_bytes,
        "show_error": True,
        "state_session_capacity": demo.adiff_context.store.max_sessions,
        # sampling runs hold a worker thread while they wait on the engine: room for all of them and the rest
        "max_threads": LIMITS.sampling_runs + 64,
    }
    if CSS_PATH.is_file():
        kw["css_paths"] = [CSS_PATH]
    return kw


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python app.py", description="adiff: an interactive visual explorer for diffusion models"
    )
    ap.add_argument(
        "--host",
        default=None,
        help="interface to listen on (default 127.0.0.1, or $GRADIO_SERVER_NAME; 0.0.0.0 for a LAN or a container)",
    )
    ap.add_argument("--port", type=int, default=None, help="port (default 7860, or $GRADIO_SERVER_PORT)")
    ap.add_argument("--share", action="store_true", help="also make a public *.gradio.live link (needs internet)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where models run (default auto)")
    ap.add_argument("--root-path", default=None, help="URL prefix when served behind a proxy, e.g. /adiff")
    ap.add_argument(
        "--max-heavy-jobs",
        type=int,
        default=2,
        metavar="N",
        help="training, adaptation and upload jobs that run at once (sampling shares the engine); the rest wait (default 2)",
    )
    ap.add_argument("--max-queue", type=int, default=256, metavar="N", help="queued events before new ones are refused")
    ap.add_argument(
        "--max-sessions",
        type=int,
        default=200,
        metavar="N",
        help="sessions kept in memory (ours and Gradio's); the least recently used are dropped beyond it",
    )
    ap.add_argument(
        "--max-upload-params",
        type=int,
        default=LIMITS.upload_params,
        metavar="N",
        help=f"largest model a visitor may upload, in parameters (default {LIMITS.upload_params:,}); "
        "its tokens and FLOPs per sample are bounded too, so its preview takes seconds",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA GPU is available on this machine (use auto or cpu)")
    if args.port is not None and not 1 <= args.port <= 65535:
        ap.error(f"--port must be in 1..65535, got {args.port}")
    for name in ("max_heavy_jobs", "max_queue", "max_sessions", "max_upload_params"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("adiff").setLevel(logging.INFO)
    args = parse_args(argv)
    on_cpu = args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available())
    if on_cpu:  # concurrent jobs would fight over the cores: give each its share
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.max_heavy_jobs))
    demo = build_app(args.device, args.max_heavy_jobs, args.max_queue, args.max_sessions, args.max_upload_params)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        root_path=args.root_path,
        prevent_thread_lock=True,
        **launch_kwargs(demo),
    )
    if args.share and not getattr(demo, "share_url", None):
        print(
            "No public link was made: the share server could not be reached (no internet access, or a firewall "
            f"blocks it). The app is served locally at {demo.local_url}",
            file=sys.stderr,
            flush=True,
        )
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.adiff_context.close()
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
