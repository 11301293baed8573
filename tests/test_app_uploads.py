"""Hostile uploads against `python app.py` running as its own process (issue 14, findings 1-5), so that its memory,
read from /proc/PID/status, is the app's own: each file is refused with a message naming the field, the server
stays up, the next valid call works, and the refusal leaves less than 50 MB of resident memory behind."""

import base64
import json

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests import hostile_files as H
from tests.app_helpers import app_process, memory_mb

LEFT_BEHIND_MB = 50.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uploads")
    with app_process(tmp / "app.log", "--max-heavy-jobs", "1") as (url, pid):
        client = Client(url, verbose=False)
        good = tmp / "good.safetensors"
        good.write_bytes(H.valid_checkpoint())
        for _ in range(2):  # warm-up: a real load and preview, a sample, one refused upload
            fig, status = client.predict(handle_file(str(good)), api_name="/load_model")
            assert status["status"] == "loaded", status
            client.predict("my model", "ddim", 5, 0.0, 0, 20, "any", 1.0, api_name="/generate")
            bad = tmp / "warm.safetensors"
            bad.write_bytes(H.with_nonfinite(H.valid_checkpoint()))
            with pytest.raises(AppError):
                client.predict(handle_file(str(bad)), api_name="/load_model")
        yield url, pid, client, good, tmp


GOOD = H.valid_checkpoint()
CASES = {
    # finding 1: the config inflated, tensors (and so the checksum) unchanged: 2 x 88 M parameters if built
    "inflated": (
        lambda: H.with_config(GOOD, hidden_dim=1024, num_layers=2, mlp_ratio=16),
        "config (hidden_dim 1024, num_layers 2, mlp_ratio 16, embedding_dim 32) makes a model of",
    ),
    "largest": (
        lambda: H.with_config(GOOD, hidden_dim=8192, num_layers=64, mlp_ratio=16, num_heads=8),
        "over the limit of 50,000,000",
    ),
    "many classes": (
        lambda: H.with_config(GOOD, model_type="conditional", num_classes=100_000, embedding_dim=4096),
        "num_classes 100000) makes a model of",
    ),
    "many classes, small": (
        lambda: H.with_config(GOOD, model_type="conditional", num_classes=100_000),
        "tensor 'ema.label_embedding.weight'",
    ),
    "64 kB points config": (
        lambda: H.with_config(GOOD, hidden_dim=256, num_layers=8),
        "FLOPs per sample and step, over the limit",
    ),
    # finding 2: a 63 MB header
    "huge header": (lambda: H.huge_header(63), "its header is 66,0"),
    # finding 3: the compute bomb, one token per pixel
    "compute bomb": (H.compute_bomb, "data_shape [1, 64, 64], patch_size 1) makes 4,096 tokens per sample"),
    # finding 4: non-finite weights with a recomputed checksum
    "NaN weights": (lambda: H.with_nonfinite(GOOD), "tensor 'ema.encoder.0.ffn.0.weight' has 3 NaN or infinite"),
    "inf weights": (lambda: H.with_nonfinite(GOOD, float("inf"), 5), "has 5 NaN or infinite values"),
    # finding 5: what used to be "load_model failed unexpectedly"
    "nested header": (H.nested_header, "nested 100000 levels deep, over the limit of 32"),
    "counters Infinity": (
        lambda: H.with_meta(GOOD, counters={"training_step": float("inf")}),
        "'counters.training_step' must be a non-negative integer, got inf",
    ),
    "counters [1]": (lambda: H.with_meta(GOOD, counters=[1]), "'counters' must be an object, got [1]"),
    "3-channel images": (lambda: H.valid_checkpoint({"data_shape": [3, 8, 8]}), "data_shape is [3, 8, 8]"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_upload_is_refused_and_leaves_no_memory_behind(served, case):
    url, pid, client, good, tmp = served
    build, expected = CASES[case]
    path = tmp / f"{case.replace(' ', '_')}.safetensors"
    path.write_bytes(build())
    before = memory_mb(pid)
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(path)), api_name="/load_model")
    after = memory_mb(pid)
    msg = str(info.value)
    assert msg.startswith(f"model_file: checkpoint '{path.name}'") or msg.startswith("model_file: this app"), msg
    assert expected in msg, msg
    assert len(msg) < 400 and "Traceback" not in msg
    left = after["VmRSS"] - before["VmRSS"]
    print(f"{case}: RSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MB (+{left:.1f}), peak {after['VmHWM']:.0f} MB")
    assert left < LEFT_BEHIND_MB, (case, before, after)
    # the server is up and the next valid call works: the good file loads, and sampling it works
    fig, status = client.predict(handle_file(str(good)), api_name="/load_model")
    assert status["status"] == "loaded" and status["nonfinite_samples"] == 0
    *_, summary, _, _ = client.predict("my model", "ddim", 5, 0.0, 0, 20, "any", 1.0, api_name="/generate")
    assert summary["status"] == "done" and summary["nonfinite_samples"] == 0


def test_a_refused_upload_keeps_the_model_already_loaded(served):
    """A failed load never keeps half of the new model nor drops the old one (DESIGN.md: no silent fallbacks)."""
    url, pid, client, good, tmp = served
    client.predict(handle_file(str(good)), api_name="/load_model")
    path = tmp / "nan2.safetensors"
    path.write_bytes(H.with_nonfinite(GOOD))
    with pytest.raises(AppError):
        client.predict(handle_file(str(path)), api_name="/load_model")
    *_, summary, _, _ = client.predict("my model", "ddim", 5, 0.0, 0, 10, "any", 1.0, api_name="/generate")
    assert summary["status"] == "done" and summary["T"] == H.SMALL["num_diffusion_steps"]


# --- issue 15's own-data uploads: the same queue and the same bounds --------------------------------------------------


def _file(path, blob: bytes) -> str:
    path.write_bytes(blob)
    return str(path)


def _data_url(blob: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(blob).decode()


def _layers(tmp) -> dict:
    """Issue 23: an image editor's payload whose 150 layers all point at one 2048x2048 PNG (Gradio decoded each)."""
    im = Image.new("L", (2048, 2048), 255)
    path = tmp / "layer.png"
    im.save(path, optimize=True)
    ref = handle_file(str(path))
    return {"background": ref, "layers": [ref] * 150, "composite": ref, "id": "someone-elses-id"}


OWN_DATA_CASES = {
    # a drawing sent through the API may be an image of any declared size: refused from its header
    "drawing bomb": ("/use_drawing", lambda tmp: [_data_url(H.png_bomb())], "drawing: the image "),
    # the sketch payload of issue 23 (+584 MB before): nothing in it is decoded or kept
    "sketch layers": (
        "/use_drawing",
        lambda tmp: [_layers(tmp)],
        "drawing: unknown keys background, layers, composite",
    ),
    "drawing strokes": (
        "/use_drawing",
        lambda tmp: [json.dumps({"w": 400, "h": 400, "brush": 5, "strokes": [[[1, 1]] * 9000]})],
        "drawing: 9,000 points in the strokes, at most 8,000",
    ),
    # a zip whose one member inflates to 200 MB, and a PNG whose header declares 144 M pixels
    "zip bomb": ("/use_images", lambda tmp: [[handle_file(_file(tmp / "bomb.zip", H.zip_bomb()))], "16"], "images:"),
    "image bomb": ("/use_images", lambda tmp: [[handle_file(_file(tmp / "big.png", H.png_bomb()))], "16"], "images:"),
}


@pytest.mark.parametrize("case", list(OWN_DATA_CASES))
def test_hostile_own_data_is_refused_queued_and_leaves_no_memory_behind(served, case):
    url, pid, client, good, tmp = served
    api_name, args, expected = OWN_DATA_CASES[case]
    inputs = args(tmp)
    before = memory_mb(pid)
    with pytest.raises(AppError) as info:
        client.predict(*inputs, api_name=api_name)
    after = memory_mb(pid)
    msg = str(info.value)
    assert expected in msg and len(msg) < 700 and "Traceback" not in msg, msg  # Gradio cuts its echo of the input
    left = after["VmRSS"] - before["VmRSS"]
    print(
        f"{case}: RSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MB (+{left:.1f}), peak {after['VmHWM']:.0f} MB; {msg}"
    )
    assert left < LEFT_BEHIND_MB, (case, before, after)
    *_, summary, _, _ = client.predict("moons", "ddim", 5, 0.0, 0, 20, "any", 1.0, api_name="/generate")
    assert summary["status"] == "done"  # the server is up and the next call works
