"""Helpers for the app tests: the app in-process or as its own process, preset checkpoints, plot decoding,
thread limits, memory of a process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch

import adiff.presets as presets
from adiff import DiffusionModel


def missing_presets() -> list[str]:
    return [n for n in presets.list_presets() if not presets.preset_path(n).is_file()]


@contextlib.contextmanager
def preset_dir_with_fallbacks(tmp: Path):
    """Use the shipped presets; any that are not trained yet are replaced by untrained checkpoints of the same
    architecture (the app tests check plumbing, not sample quality), in a temporary folder."""
    missing = missing_presets()
    if not missing:
        yield presets.PRESET_DIR
        return
    tmp.mkdir(parents=True, exist_ok=True)
    for name in presets.list_presets():
        real = presets.preset_path(name)
        dst = tmp / real.name
        if real.is_file():
            dst.symlink_to(real)
        else:
            spec = presets.preset_spec(name)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = DiffusionModel({**spec.config, "device": "cpu"})
            model.save(dst, extra={"preset": name, "dataset": spec.dataset}, ema_only=True)
    old = presets.PRESET_DIR
    presets.PRESET_DIR = tmp
    presets._cache.clear()
    try:
        yield tmp
    finally:
        presets.PRESET_DIR = old
        presets._cache.clear()


@contextlib.contextmanager
def live_app(tmp: Path, **build_kwargs):
    """The app built by ``app.build_app(device="cpu", **build_kwargs)`` and launched in-process as main() launches
    it (``launch_kwargs``) on 127.0.0.1, with preset fallbacks and one torch thread: yields (demo, url)."""
    import app as app_module

    with preset_dir_with_fallbacks(tmp), torch_threads(1):
        demo = app_module.build_app(**{"device": "cpu", **build_kwargs})
        _, url, _ = demo.launch(
            server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs(demo)
        )
        try:
            yield demo, url
        finally:
            demo.close()
            demo.adiff_context.close()


@contextlib.contextmanager
def app_context(tmp: Path):
    """An AppContext on the CPU over the shipped presets (fallbacks where missing), torch at one thread."""
    from components.context import AppContext

    with preset_dir_with_fallbacks(tmp), torch_threads(1):
        ctx = AppContext(device="cpu")
        try:
            yield ctx
        finally:
            ctx.store.close_all()


@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def plot_json(value) -> dict:
    """A gr.Plot output as gradio_client returns it ({"type": "plotly", "plot": "<json>"}) -> the figure dict."""
    assert isinstance(value, dict) and value.get("type") == "plotly", value
    assert "bdata" not in value["plot"], "figures must be built from lists (plotly 7 base64-encodes numpy arrays)"
    return json.loads(value["plot"])


# /guided_generate's inputs in the API's order (GuidedRequest.parse's parameters), the guidance tab's request with an
# empty expression (the reward's own); ``guided_inputs`` changes some by name
GUIDED_INPUTS = {
    "preset": "moons",
    "reward": "distance_to_target",
    "expression": "",
    "reward_params": "",
    "guidance_scale": 2.0,
    "guidance_mode": "dps",
    "recurrence": 1,
    "class_label": "any",
    "cfg_scale": 1.0,
    "sampler": "ddim",
    "num_steps": 20,
    "seed": 0,
    "num_samples": 300,
}


def guided_inputs(**changes) -> tuple:
    """/guided_generate's positional inputs: GUIDED_INPUTS with ``changes`` (by parameter name)."""
    unknown = set(changes) - GUIDED_INPUTS.keys()
    assert not unknown, f"no /guided_generate parameter {sorted(unknown)}"
    return tuple({**GUIDED_INPUTS, **changes}.values())


def traces_named(fig: dict, name: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("name") == name]


def trace(fig: dict, name: str) -> dict:
    """The one trace of a figure called ``name`` (a test reads traces by name, never by position)."""
    found = traces_named(fig, name)
    assert len(found) == 1, (name, [t.get("name") for t in fig["data"]])
    return found[0]


def require(condition: bool, reason: str) -> None:
    """Skip a test that cannot run here, but fail it on CI (CI=true): nothing is silently skipped there."""
    import os

    import pytest

    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


ROOT = Path(__file__).resolve().parent.parent


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak) of a process, in MB, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


@contextlib.contextmanager
def app_process(log_path: Path, *flags: str, timeout: float = 180.0, root: Path = ROOT):
    """``python app.py --device cpu --port P *flags`` (the app.py in ``root``) as a process of its own, so that its
    memory is its own: yields (url, pid); stopped at the end by its process id."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(root / "app.py"), "--device", "cpu", "--port", str(port), *flags],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            t0 = time.time()
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"app.py exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError:
                    if time.time() - t0 > timeout:
                        raise RuntimeError(
                            f"app.py did not answer in {timeout} s: {log_path.read_text()[-3000:]}"
                        ) from None
                    time.sleep(0.25)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
