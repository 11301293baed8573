"""The real digits in the app's tabs, through the public API: forward, reverse, guidance (the classifier reward and
the ink reward) and adaptation show 8x8 digits enlarged to 16x16 blocks, like the glyphs."""

from __future__ import annotations

import json

from gradio_client import Client

from tests.app_helpers import plot_json
from tests.test_app_api import app, stream  # noqa: F401  (the module-scoped app fixture)


def _heatmaps(fig: dict) -> list[dict]:
    return [t for t in fig["data"] if t["type"] == "heatmap"]


def test_digits_in_forward_reverse_guidance_and_adaptation(app):  # noqa: F811
    client = Client(app[1], verbose=False)
    fig, _, summary, _ = client.predict("digits", "cosine", 100, 30, 3, 0, api_name="/forward")
    cols = _heatmaps(plot_json(fig))
    assert cols and all(len(c["z"][0]) == 16 for c in cols)  # 8 pixels shown as 16 (each pixel 2x2)
    assert len(cols[0]["z"]) == 3 * 16 + 2 and "handwritten" in summary["about"]

    _, (_, _, status, _, data) = stream(client, "digits", "ddim", 10, 0.0, 0, 4, "each", 2.0, api_name="/generate")
    player = json.loads(open(data).read())
    spec = player["static"]["layers"]["x_t"]
    assert status["status"] == "done" and player["kind"] == "images"
    assert (spec["h"], spec["w"]) == (2 * 16 + 1, 2 * 16 + 1)  # 2 x 2 digits of 8 pixels shown as 16, 1-pixel gap

    for reward, params in (("classifier_logprob", '{"digit": 3}'), ("brightness", "")):
        _, (fig, _, gsum) = stream(
            client,
            "digits",
            reward,
            "",
            params,
            2.0,
            "dps",
            1,
            "any",
            1.0,
            "ddim",
            10,
            0,
            8,
            api_name="/guided_generate",
        )
        assert gsum["guided_mean_reward"] is not None and gsum["unguided_mean_reward"] is not None
        assert len(_heatmaps(plot_json(fig))) == 3  # unguided, guided, and the tilted target from real digits

    updates, final = stream(
        client, "digits", "ink_in_region", "", "", 2, 1e-4, 16, 50, 0.7, False, 2.0, 0, api_name="/adapt"
    )
    curves, _, gallery, before_after, _, status = final
    assert status["step"] == 2 and gallery and len(_heatmaps(plot_json(before_after))) == 2
