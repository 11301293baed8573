"""Your own data in the Train tab, through the public API (gradio_client against the app launched in-process): a
drawing (strokes as coordinates, or one image as a data URL) becomes 'my drawing', uploaded images become 'my
images' (with class folders as labels), each trains and is then 'my model' in the other tabs; refused drawings and
uploads name the field and keep what was there.  The drawing's checks and raster (components/train/strokes.py)
are tested directly first."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from adiff import DiffusionModel
from adiff.data import MAX_DRAWING_PIXELS
from components.fields import UserError
from components.limits import LIMITS
from components.train.strokes import drawing_image
from tests.app_helpers import plot_json, trace
from tests.own_images import plain_shape_png
from tests.test_app_api import app, app_error, stream  # noqa: F401  (the module-scoped app fixture)


@pytest.fixture
def client(app):  # noqa: F811
    return Client(app[1], verbose=False)  # a fresh session per test


def _strokes(*strokes, brush=12, side=400) -> dict:
    """A drawing as the canvas sends it: strokes of [x, y] canvas pixels."""
    return {"w": side, "h": side, "brush": brush, "strokes": [[list(p) for p in s] for s in strokes]}


BAR = [(x, 200) for x in range(40, 361, 4)]  # a horizontal stroke across the middle of the canvas


def _data_url(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


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


def _refusal(value) -> str:
    with pytest.raises(UserError) as info:
        drawing_image(value)
    msg = info.value.message
    assert msg.startswith("drawing: ") and len(msg) < 300, msg
    return msg


def test_strokes_are_drawn_on_the_servers_raster_as_the_canvas_draws_them():
    im, strokes = drawing_image(_strokes(BAR, [(200, 100)]))
    side = LIMITS.drawing_raster
    assert im.size == (side, side) and im.mode == "L" and strokes.points == len(BAR) + 1
    ink = np.asarray(im) < 128  # [side, side]
    rows = np.flatnonzero(ink[:, side // 2])
    # the bar: 12 px brush at 400 -> 6 px at 200 (PIL draws it 7 rows wide), centred on y = 100; the dot: a disc of
    # the same width at (100, 50)
    assert list(rows) == [*range(47, 54), *range(97, 104)] and not ink[20, 20]
    cols = np.flatnonzero(ink[100])
    assert cols.min() == 17 and cols.max() == 183  # x = 40..360 -> 20..180, and the round caps
    same, _ = drawing_image(json.dumps(_strokes(BAR, [(200, 100)])))  # the JSON text of it: the same raster
    assert np.array_equal(np.asarray(same), np.asarray(im))


def test_a_drawings_counts_are_refused_before_any_point_is_read():
    junk = ["not a point"] * (LIMITS.drawing_stroke_points + 1)
    assert f"at most {LIMITS.drawing_stroke_points:,}" in _refusal(_strokes(junk))
    many = [[(1, 1)]] * (LIMITS.drawing_strokes + 1)
    assert f"{LIMITS.drawing_strokes + 1:,} strokes, at most" in _refusal(_strokes(*many))
    long = " " * (LIMITS.drawing_chars + 1)
    assert f"characters, at most {LIMITS.drawing_chars:,}" in _refusal(long)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "the canvas is empty"),
        ("", "the canvas is empty"),
        (_strokes(), "the canvas is empty"),
        (_strokes([], []), "the canvas is empty"),
        ({"composite": {"path": "x"}, "layers": [{"path": "x"}] * 150, "background": None}, "unknown keys composite"),
        ({**_strokes(BAR), "w": 5}, "w must be in 16..2048, got 5"),
        ({**_strokes(BAR), "h": 1.5}, "h must be an integer in 16..2048, got 1.5"),
        ({**_strokes(BAR), "brush": float("nan")}, "brush must be a number in 1..60, got nan"),
        (_strokes([(10, 10), (500, 10)]), "a point's x must be in 0..400, got 500"),
        (_strokes([(10, True)]), "a point's y must be a number"),
        (_strokes([(10, 10, 10)]), "a stroke's point must be [x, y], got [10, 10, 10]"),
        ({**_strokes(BAR), "strokes": "x" * 1000}, "strokes must be a list of strokes"),
        ("[" * 100_000, "is neither JSON nor a data URL"),
        ("data:image/png;base64,!!!", "drawing: the data URL is not valid base64"),
        (12, "must be the strokes"),
    ],
)
def test_a_bad_drawing_is_refused_naming_the_drawing(value, expected):
    assert expected in _refusal(value)


def test_an_image_drawing_is_checked_from_its_header_before_decoding():
    """A data URL of a PNG whose header declares more than MAX_DRAWING_PIXELS pixels (a small file) is refused
    before a pixel is decoded; a canvas with transparency is flattened as the library documents."""
    side = int(MAX_DRAWING_PIXELS**0.5) + 1
    buf = io.BytesIO()
    Image.new("1", (side, side), 1).save(buf, format="PNG")  # 1 bit a pixel: a small file
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert len(url) < 100_000
    assert f"{side}x{side} pixels; at most {MAX_DRAWING_PIXELS:,}" in _refusal(url)
    im, strokes = drawing_image(_data_url(Image.new("L", (40, 30), 255)))
    assert strokes is None and im.size == (40, 30)


def test_a_drawing_trains_and_becomes_my_model(client):
    fig, status, dataset = client.predict(json.dumps(_strokes(BAR)), api_name="/use_drawing")
    assert status["dataset"] == "my drawing" and status["inked_pixels"] > 1000 and dataset["value"] == "my drawing"
    assert status["strokes"] == 1
    preview = plot_json(fig)
    ys = preview["data"][0]["y"]
    assert preview["data"][0]["name"] == "data x₀" and len(ys) == 2000 and max(abs(y) for y in ys) < 0.3
    _, (_, samples, film, train_status) = _train(client, "my drawing")
    assert train_status["status"] == "done" and train_status["dataset"] == "my drawing"
    assert film["frames"]["count"] == train_status["film_frames"] > 1  # 2-D own data has its film too
    assert trace(plot_json(samples), "model samples")
    _, (_, _, gen_status, _, _) = stream(client, "my model", "ddim", 10, 0.0, 0, 50, "any", 1.0, api_name="/generate")
    assert gen_status["status"] == "done"


def test_an_image_drawing_works_through_the_api(client):
    im = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(im).line((30, 150, 270, 150), fill=0, width=12)
    _, status, _ = client.predict(_data_url(im), api_name="/use_drawing")
    assert status["dataset"] == "my drawing" and status["strokes"] is None and status["inked_pixels"] > 1000


def test_an_empty_or_tiny_drawing_is_refused(client):
    blank = _data_url(Image.new("L", (300, 300), 255))
    assert app_error(lambda: client.predict(blank, api_name="/use_drawing")).startswith("drawing: is empty")
    assert app_error(lambda: client.predict("", api_name="/use_drawing")).startswith("drawing: the canvas is empty")
    dot = json.dumps(_strokes([(100, 100)], brush=2))
    assert app_error(lambda: client.predict(dot, api_name="/use_drawing")).startswith("drawing: the strokes cover only")
    msg = app_error(lambda: _train(client, "my drawing"))
    assert msg.startswith("dataset: 'my drawing' is empty")


def test_uploaded_class_folders_train_a_conditional_model(client, tmp_path):
    entries = {f"shapes/bars/{i}.png": plain_shape_png("bar") for i in range(5)} | {
        f"shapes/rings/{i}.png": plain_shape_png("ring") for i in range(3)
    }
    fig, status, dataset = client.predict([handle_file(_zip(tmp_path, entries))], "8", api_name="/use_images")
    assert status["counts_per_class"] == {"bars": 5, "rings": 3} and status["image_size"] == 8
    assert dataset["value"] == "my images"
    preview = plot_json(fig)
    assert "bars 5 · rings 3" in preview["layout"]["title"]["text"]
    assert len(preview["data"][0]["z"]) == 3 * 16 + 2  # 8 images in a 3x3 grid, each 8x8 shown at 16x16
    updates, (*_, train_status) = _train(client, "my images", conditional=True)
    assert "2-D" in updates[0][2]["static"]["title"] and "film_frames" not in train_status  # images: no film
    assert train_status["status"] == "done"
    # A refused upload keeps the images that were there: the next model still trains on the 8x8 set.
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"definitely not a zip")
    msg = app_error(lambda: client.predict([handle_file(str(bad))], "32", api_name="/use_images"))
    assert msg.startswith("images: the file is not a zip archive")
    evil = _zip(tmp_path, {"../../etc/x.png": plain_shape_png("bar"), "a.png": plain_shape_png("bar")}, "evil.zip")
    assert "escapes the folder" in app_error(lambda: client.predict([handle_file(evil)], "32", api_name="/use_images"))
    _train(client, "my images", conditional=True)
    path, _ = client.predict(api_name="/save_model")
    model = DiffusionModel.load(path, device="cpu")
    assert model.config["arch"]["data_shape"] == [1, 8, 8] and model.config["arch"]["num_classes"] == 2


def test_several_image_files_and_an_unlabelled_set(client, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        p.write_bytes(plain_shape_png("ring"))
        paths.append(handle_file(str(p)))
    _, status, _ = client.predict(paths, "16", api_name="/use_images")
    assert status["counts_per_class"] == {"all": 3} and status["classes"] == []
    assert app_error(lambda: _train(client, "my images", conditional=True)).startswith("conditional")
    assert app_error(lambda: client.predict(paths, "12", api_name="/use_images")).startswith("image_size")
    assert app_error(lambda: client.predict([], "16", api_name="/use_images")).startswith("images: no file")


def _compare(client, a, b):
    return client.predict(a, "ddim", 5, b, "ddim", 5, 0, 16, "any", api_name="/compare")


def test_compare_tells_my_images_from_glyphs_by_their_fingerprint(client, tmp_path):
    """Issue 23: 'my images' with classes 0-9 at 16x16 has the shape and the class count of glyphs, but is not the
    same data: compare refuses the pair, naming model_b, also after the model is saved and loaded again; a model of
    a built-in dataset pairs with that dataset's preset (and not with another's)."""
    entries = {f"mine/{c}/{i}.png": plain_shape_png("bar" if c % 2 else "ring") for c in range(10) for i in range(2)}
    _, status, _ = client.predict([handle_file(_zip(tmp_path, entries))], "16", api_name="/use_images")
    assert status["images"] == 20 and len(status["counts_per_class"]) == 9  # 8 shown, the rest in one entry
    _train(client, "my images", conditional=True)
    msg = app_error(lambda: _compare(client, "glyphs", "my model"))
    assert msg.startswith("model_b: 'my model' was trained on my images (sha256:"), msg
    assert msg.endswith("'glyphs' on glyphs; compare two models of the same data"), msg
    fingerprint = msg.split("(")[1].split(")")[0]
    _, text, summary, _, _ = _compare(client, "my model", "my model")
    assert summary["status"] == "done" and summary["same_x_T"], text
    path, _ = client.predict(api_name="/save_model")
    client.predict(handle_file(path), api_name="/load_model")
    again = app_error(lambda: _compare(client, "glyphs", "my model"))
    assert fingerprint in again and again.startswith("model_b: 'my model' was trained on my images"), again

    _train(client, "moons")
    _, _, summary, _, _ = _compare(client, "my model", "moons")
    assert summary["status"] == "done"
    msg = app_error(lambda: _compare(client, "my model", "swissroll"))
    assert (
        msg == "model_b: 'swissroll' was trained on swissroll, 'my model' on moons; compare two models of the same data"
    )
