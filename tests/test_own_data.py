"""Your own data in the Train tab, through the public API (gradio_client against the app launched in-process): a
drawing becomes 'my drawing', uploaded images become 'my images' (with class folders as labels), each trains and is
then 'my model' in the other tabs; refused drawings and uploads name the field and keep what was there."""

from __future__ import annotations

import io
import zipfile

import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from adiff import DiffusionModel
from components.fields import UserError
from components.train.own_data import MAX_DRAWING_PIXELS, drawing_array
from tests.app_helpers import plot_json, trace
from tests.test_app_api import app, app_error, stream  # noqa: F401  (the module-scoped app fixture)


@pytest.fixture
def client(app):  # noqa: F811
    return Client(app[1], verbose=False)  # a fresh session per test


def _sketch(tmp_path, draw=None, size=(300, 300)) -> dict:
    im = Image.new("L", size, 255)
    if draw:
        draw(ImageDraw.Draw(im))
    p = tmp_path / f"canvas{len(list(tmp_path.iterdir()))}.png"
    im.save(p)
    return {"background": handle_file(str(p)), "layers": [], "composite": handle_file(str(p)), "id": None}


def _png(shape: str) -> bytes:
    im = Image.new("RGB", (20, 20), "white")
    d = ImageDraw.Draw(im)
    if shape == "bar":
        d.rectangle((8, 2, 12, 17), fill="black")
    else:
        d.ellipse((2, 2, 17, 17), outline="black", width=3)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _zip(tmp_path, entries: dict[str, bytes], name="data.zip") -> str:
    p = tmp_path / name
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in entries.items():
            z.writestr(k, v)
    return str(p)


TRAIN = dict(schedule="cosine", T=50, size="tiny", steps=12, bs=32, lr=2e-3, seed=0)


def _train(client, dataset, conditional=False):
    t = TRAIN
    return stream(
        client,
        dataset,
        t["schedule"],
        t["T"],
        t["size"],
        conditional,
        t["steps"],
        t["bs"],
        t["lr"],
        t["seed"],
        api_name="/train",
    )


def test_a_canvas_is_flattened_on_white_and_a_huge_one_refused_before_decoding(tmp_path):
    """The canvas exports transparent pixels as black under alpha 0: flattened on white they are background, and only
    the stroke is ink (as Gradio's own preprocess flattened it).  A canvas over the limit is refused from its header."""
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    ImageDraw.Draw(im).line((5, 15, 35, 15), fill=(0, 0, 0, 255), width=3)
    im.save(tmp_path / "canvas.png")
    gray = drawing_array(tmp_path / "canvas.png")
    assert gray.shape == (30, 40) and gray.dtype.name == "uint8"
    assert gray[0, 0] == 255 and gray[15, 20] == 0 and (gray < 128).sum() == 31 * 3
    side = int(MAX_DRAWING_PIXELS**0.5) + 1
    Image.new("1", (side, side), 1).save(tmp_path / "huge.png")  # 1 bit a pixel: a small file
    with pytest.raises(UserError) as info:
        drawing_array(tmp_path / "huge.png")
    assert info.value.message.startswith(
        f"drawing: a canvas of {side}×{side} pixels exceeds limit of {MAX_DRAWING_PIXELS}"
    )


def test_a_drawing_trains_and_becomes_my_model(client, tmp_path):
    bar = _sketch(tmp_path, lambda d: d.line((30, 150, 270, 150), fill=0, width=12))
    fig, status, dataset = client.predict(bar, api_name="/use_drawing")
    assert status["dataset"] == "my drawing" and status["inked_pixels"] > 1000 and dataset["value"] == "my drawing"
    preview = plot_json(fig)
    ys = preview["data"][0]["y"]
    assert preview["data"][0]["name"] == "data x₀" and len(ys) == 2000 and max(abs(y) for y in ys) < 0.3
    _, (_, samples, train_status) = _train(client, "my drawing")
    assert train_status["status"] == "done" and train_status["dataset"] == "my drawing"
    assert trace(plot_json(samples), "model samples")
    _, (_, _, gen_status, _, _) = stream(client, "my model", "ddim", 10, 0.0, 0, 50, "any", 1.0, api_name="/generate")
    assert gen_status["status"] == "done"


def test_an_empty_or_tiny_drawing_is_refused(client, tmp_path):
    assert app_error(lambda: client.predict(_sketch(tmp_path), api_name="/use_drawing")).startswith("drawing is empty")
    dot = _sketch(tmp_path, lambda d: d.ellipse((100, 100, 102, 102), fill=0))
    assert "drawing: the strokes cover only" in app_error(lambda: client.predict(dot, api_name="/use_drawing"))
    msg = app_error(lambda: _train(client, "my drawing"))
    assert msg.startswith("dataset: 'my drawing' is empty")


def test_uploaded_class_folders_train_a_conditional_model(client, tmp_path):
    entries = {f"shapes/bars/{i}.png": _png("bar") for i in range(5)} | {
        f"shapes/rings/{i}.png": _png("ring") for i in range(3)
    }
    fig, status, dataset = client.predict([handle_file(_zip(tmp_path, entries))], "8", api_name="/use_images")
    assert status["counts_per_class"] == {"bars": 5, "rings": 3} and status["image_size"] == 8
    assert dataset["value"] == "my images"
    preview = plot_json(fig)
    assert "bars 5 · rings 3" in preview["layout"]["title"]["text"]
    assert len(preview["data"][0]["z"]) == 3 * 16 + 2  # 8 images in a 3x3 grid, each 8x8 shown at 16x16
    _, (_, _, train_status) = _train(client, "my images", conditional=True)
    assert train_status["status"] == "done"
    # A refused upload keeps the images that were there: the next model still trains on the 8x8 set.
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"definitely not a zip")
    msg = app_error(lambda: client.predict([handle_file(str(bad))], "32", api_name="/use_images"))
    assert msg.startswith("images: archive: not a zip file")
    evil = _zip(tmp_path, {"../../etc/x.png": _png("bar"), "a.png": _png("bar")}, "evil.zip")
    assert "escapes the folder" in app_error(lambda: client.predict([handle_file(evil)], "32", api_name="/use_images"))
    _train(client, "my images", conditional=True)
    path, _ = client.predict(api_name="/save_model")
    model = DiffusionModel.load(path, device="cpu")
    assert model.config["arch"]["data_shape"] == [1, 8, 8] and model.config["arch"]["num_classes"] == 2


def test_several_image_files_and_an_unlabelled_set(client, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        p.write_bytes(_png("ring"))
        paths.append(handle_file(str(p)))
    _, status, _ = client.predict(paths, "16", api_name="/use_images")
    assert status["counts_per_class"] == {"all": 3} and status["classes"] == []
    assert app_error(lambda: _train(client, "my images", conditional=True)).startswith("conditional")
    assert app_error(lambda: client.predict(paths, "12", api_name="/use_images")).startswith("image_size")
    assert app_error(lambda: client.predict([], "16", api_name="/use_images")).startswith("images: no file")
