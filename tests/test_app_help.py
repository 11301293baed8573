"""Teaching help and honest messages: the glossary covers the terms the UI uses, the plain-language summaries say
what the numbers mean (a negative MMD², an over-shooting guidance, a fooled classifier), the custom-schedule check is
the one Plot uses, and deep-link values are checked like the tabs' own inputs."""

import re

import gradio as gr
import pytest

from components import help as H
from components import summaries
from components.forward.view import forward_text
from components.guidance import view as guidance_view
from components.links import LinkParams, link_js
from components.schedules import handlers as schedules
from components.schedules import view as schedules_view

# every term the issue names, and the others the tabs print in labels, titles and summaries
UI_TERMS = [
    "DPS",
    "CFG",
    "η (eta)",
    "recurrence",
    "replay share",
    "anchor",
    "priority",
    "MMD²",
    "ESS",
    "terminal SNR",
    "x̂₀ (predicted clean sample)",
    "ε̂ (predicted noise)",
    "score",
    "ᾱ_t",
    "β_t",
    "σ_t (noise level)",
    "tilted target p·e^{λr}",
    "λ (guidance scale)",
    "w (CFG scale)",
    "buffer",
    "DDIM",
    "DDPM",
    "reward hacking",
    "0.999 clip",
    "ε-MSE loss",
    "EMA",
    "class, ∅",
    "clipped fraction",
    "inpainting (complete)",
    "kept pixels",
    "posterior correction",
    "the class read",
]


def schedule_curves(*args):
    """/schedule_curves' answer for these raw inputs, without a server: (figure, warnings, summary)."""
    return schedules_view.outputs(schedules.curves(schedules.CurvesRequest.of(*args)))


def test_the_glossary_explains_every_term_the_ui_uses():
    missing = [t for t in UI_TERMS if t not in H.GLOSSARY]
    assert not missing, missing
    assert all(len(text) > 30 for text in H.GLOSSARY.values())
    md = H.glossary_markdown()
    assert all(f"**{t}**" in md for t in H.GLOSSARY)


def test_every_tab_has_two_or_three_prompts_of_what_to_try():
    """Every tab's prompts are lessons: records with checks (tests/test_lessons.py counts two or three per tab)."""
    from tests.test_lessons import LESSONS

    assert not hasattr(H, "TRY_THIS")  # no plain-text prompts left
    tabs = {"schedules", "forward", "reverse", "compare", "density", "guidance", "complete", "adaptation", "train"}
    assert set(LESSONS) == tabs


def test_a_negative_mmd2_is_explained_not_shown_as_a_distance():
    text = summaries.describe_mmd2(-8.6e-6, 2e-4)
    assert "-8.6e-06" in text and "unbiased" in text and "read it as 0" in text
    assert "clearly different" in summaries.describe_mmd2(0.05, 1e-3)
    assert summaries.describe_mmd2(None, None) == ""


@pytest.mark.parametrize("guided, kind", [(-0.39, "over"), (-0.86, "on"), (-2.5, "under")])
def test_guidance_verdict_against_the_tilted_target(guided, kind):
    """The issue's moons case: unguided -3.77, target -0.86 (λ = 2); guided -0.39 over-shoots."""
    got, text = guidance_view.guidance_verdict(-3.77, guided, -0.86, 0.02, 0.01, 3000.0, 2.0, 1)
    assert got == kind
    if kind == "over":
        assert "over-shoots p·e^{λr}" in text and "recurrence 3 or a smaller λ" in text
    if kind == "under":
        assert "under-shoots" in text


def test_guidance_verdict_with_a_negative_lambda_and_a_rough_target():
    # λ < 0 aims at low rewards: going further down is the over-shoot
    kind, text = guidance_view.guidance_verdict(1.0, -2.0, -0.5, 0.01, 0.01, 12.0, -2.0, 3)
    assert kind == "over" and "~12 effective data points" in text and "try a smaller λ" in text


def test_classifier_check_says_when_the_classifier_is_fooled():
    fooled, text = guidance_view.classifier_check_text(7, 0.06, 0.94, 0.19, 0.06, 300)
    assert fooled and "fool" in text and "94%" in text and "19%" in text
    fine, text = guidance_view.classifier_check_text(7, 0.06, 0.9, 0.85, 0.06, 300)
    assert not fine and "agrees" in text


def test_the_custom_schedule_check_is_the_one_plot_uses_and_names_the_field():
    bad = "1e-300, 0.5, 0.99999999999"
    live = schedules.check_custom_values(bad, 1000)
    assert live.startswith("✗ custom_values:") and "β_t is 0 or 1" in live
    with pytest.raises(gr.Error) as e:
        schedule_curves(["custom"], 1000, bad)
    assert e.value.message == live[2:]
    assert schedules.check_custom_values(schedules.DEFAULT_CUSTOM, 1000).startswith("✓")
    assert schedules.check_custom_values("0.1, 0.5", 1).startswith("✗ num_steps")


def test_link_params_are_checked_like_inputs_and_problems_name_the_key():
    q = LinkParams(
        {
            "tab": "reverse",
            "steps": "0",
            "seed": "3",
            "sampler": "euler",
            "eta": "nan",
            "junk": "1",
            "big": "x" * 500,
            "flag": "yes",
        }
    )
    assert q.int("steps", 1, 2000) is None and q.int("seed", 0, 10) == 3
    assert q.choice("sampler", ["ddpm", "ddim"]) is None and q.float("eta", 0.0, 1.0) is None
    assert q.text("big", 1000) is None and q.bool("flag") is True
    joined = "\n".join(q.problems)
    assert "steps: must be in 1..2000, got 0" in joined and "sampler: must be one of" in joined
    assert "eta:" in joined and "big: the value is 500 characters long" in joined
    assert q.unused() == ["junk"]
    assert LinkParams({"s": "linear, cosine"}).choices("s", ["linear", "cosine"]) == ["linear", "cosine"]


def test_the_link_button_code_names_the_tab_and_its_keys():
    js = link_js("reverse", ["preset", "steps"])
    assert '"reverse"' in js and '["preset", "steps"]' in js and "URLSearchParams" in js
    assert re.search(r"clipboard.*catch", js)  # a refused clipboard is not an uncaught error


def test_forward_text_in_words():
    s = {"t": 500, "T": 1000, "schedule": "linear", "abar_t": 0.078, "sigma_t": 0.96, "x_t_std": 1.01}
    assert "7.8% of the variance is signal" in forward_text(s) and "mostly noise" in forward_text(s)


LINKS = {
    "schedules": {"schedules": "linear,sigmoid,flow", "T": "50", "custom": "0.1, 0.5, 0.9", "shift": "3"},
    "forward": {
        "dataset": "8gaussians",
        "schedule": "cosine",
        "T": "500",
        "t": "400",
        "n": "300",
        "seed": "2",
        "flow": "false",
    },
    "reverse": {
        "preset": "glyphs",
        "sampler": "ddpm",
        "steps": "50",
        "eta": "0.5",
        "seed": "3",
        "n": "16",
        "label": "7",
        "cfg": "2.5",
    },
    "compare": {
        "model_a": "8gaussians",
        "solver_a": "heun",
        "steps_a": "12",
        "model_b": "8gaussians",
        "solver_b": "euler",
        "steps_b": "30",
        "seed": "7",
        "n": "300",
        "label": "3",
    },
    "density": {"preset": "8gaussians", "steps": "24", "grid": "35", "seed": "6"},
    "guidance": {
        "preset": "glyphs",
        "reward": "classifier_logprob",
        "params": '{"digit": 7}',
        "lam": "5",
        "mode": "dps",
        "rec": "3",
        "label": "each",
        "cfg": "2",
        "sampler": "ddim",
        "steps": "40",
        "seed": "1",
        "n": "16",
        "expression": "x",
    },
    "adaptation": {
        "preset": "moons",
        "reward": "expression",
        "expression": "-x",
        "params": "",
        "lam": "-2",
        "steps": "10",
        "lr": "0.0005",
        "bs": "64",
        "cap": "300",
        "replay": "0.5",
        "guided": "true",
        "seed": "4",
    },
    "train": {
        "dataset": "glyphs",
        "process": "flow",
        "prediction": "sample",
        "schedule": "cosine",
        "T": "200",
        "size": "tiny",
        "conditional": "true",
        "steps": "100",
        "bs": "32",
        "lr": "0.001",
        "seed": "5",
    },
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import app
    from tests.app_helpers import preset_dir_with_fallbacks

    with preset_dir_with_fallbacks(tmp_path_factory.mktemp("presets")):
        yield app.build_app(device="cpu")


@pytest.mark.parametrize("tab", list(LINKS))
def test_every_tab_applies_every_key_of_its_link(demo, tab):
    link = demo.adiff_links[tab]
    assert set(LINKS[tab]) == set(link.fields), "the test covers every linked setting"
    q = LinkParams({"tab": tab, **LINKS[tab]})
    out = link.apply(q, None)
    assert not q.problems and not q.unused(), q.problems
    for key, comp in link.fields.items():
        assert comp in out, key
        got = out[comp]["value"] if isinstance(out[comp], dict) else out[comp]
        want = LINKS[tab][key]
        if isinstance(got, list):
            got = ",".join(got)
        if isinstance(got, bool):
            want = want == "true"
        elif isinstance(got, (int, float)):
            want = float(want)
        assert got == want, (key, got, want)
