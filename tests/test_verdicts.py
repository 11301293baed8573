"""The verdicts' words are claims about numbers, checked against the numbers behind them.

* Guidance: "on target" only when |guided − target| ≤ 2 standard errors of the difference (both sides' sampling
  error), over/under by the sign otherwise, and never "on target" when the classifier's re-check says it was fooled;
  real runs through the tab's own handler (the issue's λ = 10 formula case, glyphs with reward hacking, defaults).
* MMD²: "no detectable difference" within 2 of its own standard errors of 0, "close" up to 10, "clearly different"
  beyond, with the SE in the text; every summary that reports mmd2_to_data reports mmd2_se.
"""

from __future__ import annotations

import math

import pytest

from components import summaries
from components.guidance import handlers as guidance
from components.guidance import view as guidance_view
from components.state import Session
from components.summaries import CLEAR_SE, DETECTABLE_SE, describe_mmd2, fmt
from tests.app_helpers import app_context, missing_presets, require


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require(not {"moons", "glyphs"} & set(missing_presets()), "the verdicts are checked on the trained presets")
    with app_context(tmp_path_factory.mktemp("presets")) as c:
        yield c


def guided_run(ctx, preset, reward, expression, params, lam, mode, recurrence, seed, n, steps=20):
    session = Session("verdicts")
    req = guidance.GuidedRequest.parse(
        ctx, session, preset, reward, expression, params, lam, mode, recurrence, "any", 1.0, "ddim", steps, seed, n
    )
    result = list(guidance.guided_generate(ctx, session, req))[-1]
    return result.summary, result.text


def check_verdict_against_its_numbers(s: dict, text: str) -> str:
    """The verdict (summary["versus_target"] and its words) is what the numbers in the summary say; returns it."""
    kind = s["versus_target"]
    gap = s["guided_mean_reward"] - s["target_mean_reward"]
    se = math.hypot(s["guided_mean_reward_se"], s["target_mean_reward_se"])
    fooled = bool((s.get("classifier_check") or {}).get("likely_fooled"))
    if abs(gap) <= 2 * se:
        assert kind == ("fooled" if fooled else "on"), (kind, gap, se, fooled)
    else:
        assert kind == ("over" if gap * (1 if s["guidance_scale"] >= 0 else -1) > 0 else "under"), (kind, gap, se)
    assert ("on target" in text) == (kind == "on") and ("✓ on target" in text) == (kind == "on"), text
    assert f"(SE {fmt(se, 2)})" in text, text  # the standard error the verdict rests on is in the words
    return kind


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_issues_lambda_10_formula_case_over_shoots(ctx, seed):
    """-(x-1)**2 - y**2 at λ = 10 on moons: the samples collapse onto the peak (seed 0: guided -0.029 against the
    target's -0.122, 22 SE): not "on target" (the old 10%-of-the-span band said it was)."""
    s, text = guided_run(ctx, "moons", "expression", "-(x-1)**2-(y)**2", "", 10.0, "dps", 1, seed, 500)
    assert check_verdict_against_its_numbers(s, text) == "over", text
    assert s["guided_mean_reward"] - s["target_mean_reward"] > 5 * math.hypot(
        s["guided_mean_reward_se"], s["target_mean_reward_se"]
    )


def test_glyphs_with_reward_hacking_are_never_on_target(ctx):
    """glyphs, classifier_logprob for a 7 at λ = 20 with the x_t gradient, seed 0: the classifier reads 7 in most
    guided images but the re-check does not; the mean rewards agree within 2 SE, yet the verdict is "fooled"."""
    s, text = guided_run(ctx, "glyphs", "classifier_logprob", "", '{"digit": 7}', 20.0, "xt", 1, 0, 16)
    assert s["classifier_check"]["likely_fooled"]
    assert check_verdict_against_its_numbers(s, text) == "fooled"
    assert "⚠ reward hacking, not the tilted target" in text and "on target" not in text


@pytest.mark.parametrize(
    "reward, expression, lam, recurrence, seed",
    [
        ("distance_to_target", "", 2.0, 1, 0),
        ("distance_to_target", "", 2.0, 3, 1),
        ("expression", "-abs(y)", -1.0, 1, 2),
    ],
)
def test_every_guidance_verdict_matches_its_numbers(ctx, reward, expression, lam, recurrence, seed):
    s, text = guided_run(ctx, "moons", reward, expression, "", lam, "dps", recurrence, seed, 300)
    check_verdict_against_its_numbers(s, text)


def test_the_verdict_in_words():
    # the issue's numbers: guided -0.0295, target -0.122, SE of the difference 0.0056: over, at 16.5 SE
    kind, text = guidance_view.guidance_verdict(-3.1, -0.0295, -0.122, 0.005, 0.0025, 1032.0, 10.0, 1)
    assert kind == "over" and "16.5 SE" in text
    kind, text = guidance_view.guidance_verdict(-3.1, -0.125, -0.122, 0.005, 0.0025, 1032.0, 10.0, 1)
    assert kind == "on" and "0.5 SE" in text and "within 2 standard errors" in text
    kind, text = guidance_view.guidance_verdict(-3.1, -0.125, -0.122, 0.005, 0.0025, 1032.0, 10.0, 1, fooled=True)
    assert kind == "fooled" and "on target" not in text and "reward hacking" in text
    kind, _ = guidance_view.guidance_verdict(-3.1, -0.0295, -0.122, 0.005, 0.0025, 1032.0, 10.0, 1, fooled=True)
    assert kind == "over"  # a fooled classifier that also over-shoots is an over-shoot (its words say hacking)
    assert guidance_view.guidance_verdict(0.0, 1.0, 1.0, 0.0, 0.0, 10.0, 1.0, 1)[0] == "on"  # no scatter, no gap
    kind, text = guidance_view.guidance_verdict(0.0, 1.0, 0.5, 0.0, 0.0, 10.0, 1.0, 1)
    assert kind == "over" and "∞ SE" in text


@pytest.mark.parametrize(
    "v, se, words",
    [
        (-8.6e-6, 1e-4, "no detectable difference"),
        (1.9e-4, 1e-4, "no detectable difference"),
        (3e-4, 1e-4, "close to the data, but 3 standard errors above 0"),
        (9.9e-4, 1e-4, "close to the data, but 9.9 standard errors above 0"),
        (2.06e-4, 1e-4, "close to the data, but 2.1 standard errors above 0"),
        (1.1e-3, 1e-4, "11 standard errors above 0, clearly different"),
        (-5e-4, 1e-4, "no detectable difference"),
    ],
)
def test_mmd2_in_words_is_read_by_its_standard_error(v, se, words):
    text = describe_mmd2(v, se)
    assert words in text and f"± {fmt(se, 2)}" in text and f"MMD² = {fmt(v, 2)}" in text
    assert ("read it as 0" in text) == (v < 0)
    assert DETECTABLE_SE == 2 and CLEAR_SE == 10
    assert describe_mmd2(None, None) == "" and "no verdict" in describe_mmd2(1e-3, None)


def test_every_summary_with_mmd2_to_data_reports_its_standard_error(ctx):
    """The reverse tab (500 vs 500 points) and the compare tab (1000 vs 1000): mmd2_se beside mmd2_to_data, and the
    words are describe_mmd2's for those two numbers."""
    from components.reverse import handlers as reverse
    from components.reverse import requests as reverse_requests
    from components.reverse import view as reverse_view

    session = Session("verdicts-mmd")
    req = reverse_requests.GenerateRequest.parse(ctx, session, "moons", "ddim", 5, 0.0, 0, 500, "any", 1.0)
    s = list(reverse.generate(ctx, session, req))[-1].summary
    assert s["mmd2_se"] > 0 and describe_mmd2(s["mmd2_to_data"], s["mmd2_se"])[1:] in reverse_view.done_text(s)
    assert summaries.describe_mmd2(s["mmd2_to_data"], s["mmd2_se"]).startswith("distance to the data")
