"""Helpers for the app tests: preset checkpoints, plot decoding, thread limits."""
from __future__ import annotations

import contextlib
import json
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


def traces_named(fig: dict, name: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("name") == name]


def require(condition: bool, reason: str) -> None:
    """Skip a test that cannot run here, but fail it on CI (CI=true): nothing is silently skipped there."""
    import os

    import pytest

    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)
