"""Own images that train (issue 21, item 7): the settings "my images" brings (components/train/follow.py,
OWN_IMAGES_RECIPE) and the line under the dataset that says what they reached (OWN_IMAGES_MEASURED, measured by
bench/bench_own_images.py) are a claim the suite checks: trained through the tab's own handlers on a small upload
like a visitor's (tests/own_images.py: 30 PNGs, bars and rings in two class folders), the conditional samples of
each class are read as that class by two independent checks (a small CNN trained on the upload, the nearest class
mean) at least 80 % of the time.  In the page, taking images switches the dataset to "my images", sets the recipe
and shows the line; another dataset hides it."""

from __future__ import annotations

import pytest
import torch

from components.choices import default_solver
from components.context import MY_MODEL, AppContext
from components.train import follow, handlers
from components.train.own_data import ImagesRequest, use_images
from components.train.shared import OWN_IMAGES, state_of
from components.train.view import PREDICTION_LABELS
from tests.app_helpers import torch_threads
from tests.own_images import classifier_rate, nearest_mean_rate, shape_classifier, shapes_zip
from tests.test_app_browser import Page, served  # noqa: F401  (the module's app + browser, for the browser test)

TARGET = 0.8  # the bar: at least 80 % of conditional samples read as their class
SEED = 1  # one training run (about 100 s of CPU): a lesson seed


def test_the_line_under_the_dataset_is_the_measured_record():
    d = follow.dataset_defaults(OWN_IMAGES)
    m = follow.OWN_IMAGES_MEASURED
    assert d.recipe is follow.OWN_IMAGES_RECIPE and d.conditional and d.labelled
    assert (d.batch_size, d.learning_rate) == (d.recipe.batch_size, d.recipe.learning_rate)
    assert m.agreement >= TARGET and m.seeds >= 3
    assert f"**{100 * m.agreement:.0f} ± {100 * m.se:.0f} % class agreement**" in d.note
    assert f"in **{m.cpu_s:.0f} s** on a 2-core CPU" in d.note
    assert all(not follow.dataset_defaults(name).note for name in handlers.TRAIN_DATASETS)


def test_a_link_to_a_built_in_dataset_hides_the_line(tmp_path):
    """A deep link goes through the same defaults: every control they may set is one of the link's outputs."""
    import app
    from components.links import LinkParams
    from tests.app_helpers import preset_dir_with_fallbacks

    with preset_dir_with_fallbacks(tmp_path):
        link = app.build_app(device="cpu").adiff_links["train"]
    out = link.apply(LinkParams({"tab": "train", "dataset": "glyphs"}), None)
    assert set(out) <= set(link.fields.values()) | set(link.extra_outputs)
    (recipe,) = link.extra_outputs
    assert out[recipe]["visible"] is False


@pytest.mark.slow
def test_my_images_train_into_samples_of_their_classes_with_the_tabs_settings(tmp_path):
    upload = tmp_path / "shapes.zip"
    upload.write_bytes(shapes_zip())
    with torch_threads(1):
        ctx = AppContext(device="cpu")
        session = ctx.store.get(None)
        use_images(ctx, session, ImagesRequest([str(upload)], 16))
        own = state_of(session).own[OWN_IMAGES]
        d = follow.dataset_defaults(OWN_IMAGES)
        r = d.recipe
        req = handlers.TrainRequest.parse(
            ctx,
            session,
            OWN_IMAGES,
            r.schedule,
            r.T,
            r.size,
            d.conditional,
            r.steps,
            r.batch_size,
            r.learning_rate,
            SEED,
            r.process,
            r.prediction,
        )
        for last in handlers.train(ctx, session, req):
            pass
        assert last.status["status"] == "done" and last.status["step"] == r.steps
        model, info = ctx.model(MY_MODEL, session)  # as the other tabs sample it: their solver, class "each"
        sampler, steps = default_solver(model, info)
        labels = torch.arange(64) % 2
        with torch.no_grad():
            x, _ = model.generate(
                64,
                condition=labels,
                seed=1000 + SEED,
                sampler=sampler,
                num_steps=steps,
                cfg_scale=info.sample_kwargs.get("cfg_scale", 1.0),
                clip_x0=info.sample_kwargs.get("clip_x0"),
            )
        ctx.store.close_all()
    by_cnn = classifier_rate(x, labels, shape_classifier(own.x, own.labels))
    by_mean = nearest_mean_rate(x, labels, own.x, own.labels)
    assert by_cnn >= TARGET and by_mean >= TARGET, (by_cnn, by_mean)


def test_a_model_of_noise_is_not_read_as_its_classes():
    """The checks can fail: pure noise (and a model that ignores its label) is read as its class about half the
    time, far below the target."""
    from adiff.data.uploads import images_from_zip

    upload = images_from_zip(shapes_zip(), 16)
    x, y = upload.x, upload.labels
    labels = torch.arange(64) % 2
    noise = torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    one_class = x[y == 0][torch.arange(64) % 15]  # every sample a bar, whatever its label
    net = shape_classifier(x, y)
    for fake in (noise, one_class):
        assert max(classifier_rate(fake, labels, net), nearest_mean_rate(fake, labels, x, y)) <= 0.6
    assert classifier_rate(x, y, net) >= 0.9 and nearest_mean_rate(x, y, x, y) >= 0.9  # and the upload itself passes


@pytest.mark.browser
def test_taking_images_brings_the_recipe_and_its_line(served, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    _, url, browser = served
    P = Page(browser, url, height=1100)
    page = P.page
    P.tab("train")
    expect(page.locator("#tr-recipe")).to_be_hidden(timeout=30_000)
    upload = tmp_path / "shapes.zip"
    upload.write_bytes(shapes_zip())
    page.locator("#tr-images input[type=file]").set_input_files(str(upload))
    expect(page.locator("#tr-images").get_by_text("shapes.zip")).to_be_visible(timeout=30_000)
    page.locator("#tr-use-images").click()
    P.wait_text("#tr-own-status", "counts_per_class", timeout=60_000)
    expect(page.locator("#tr-dataset input")).to_have_value(OWN_IMAGES)
    P.wait_text("#tr-recipe", "class agreement", timeout=30_000)
    r = follow.OWN_IMAGES_RECIPE
    expect(page.locator("#tr-prediction").get_by_label(PREDICTION_LABELS[r.prediction])).to_be_checked()
    expect(page.locator("#tr-cond input")).to_be_checked()
    expect(page.locator("#tr-steps input[type=number]")).to_have_value(str(r.steps))
    page.locator("#tr-dataset").scroll_into_view_if_needed()
    P.shoot("train-my-images-recipe")
    page.locator("#tr-dataset input").click()
    page.get_by_role("option", name="moons", exact=True).click()
    expect(page.locator("#tr-recipe")).to_be_hidden(timeout=30_000)
    expect(page.locator("#tr-cond input")).not_to_be_checked()
    P.check_clean()
