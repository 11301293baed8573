"""The real handwritten digits (adiff.data.digits), their classifier and the classifier reward on them: the shipped
files, real data, no mocks."""

from __future__ import annotations

import json

import pytest
import torch

from adiff.data import DATA_SHAPES, IMAGE_DATASETS, NUM_CLASSES, digits_split, make_dataset
from adiff.data.digits import DIGITS_PATH, tensors_sha256
from adiff.eval.classifier import (
    DIGITS_CLASSIFIER_PATH,
    classifier_for_shape,
    evaluate_digits_classifier,
    load_digits_classifier,
)
from adiff.steering.rewards import make_reward


def test_digits_file_split_and_card():
    card = json.loads(DIGITS_PATH.with_suffix(".json").read_text())
    assert "CC BY 4.0" in card["licence"] and card["split"] == {**card["split"], "train": 1438, "heldout": 359}
    from safetensors.torch import load_file

    assert tensors_sha256(load_file(str(DIGITS_PATH))) == card["tensors_sha256"]
    x_tr, y_tr = digits_split("train")
    x_ho, y_ho = digits_split("heldout")
    x_all, _ = digits_split("all")
    assert x_tr.shape == (1438, 1, 8, 8) and x_ho.shape == (359, 1, 8, 8) and x_all.shape == (1797, 1, 8, 8)
    assert x_tr.min() == -1 and x_tr.max() == 1 and ((x_all + 1) * 8).round().eq((x_all + 1) * 8).all()  # counts 0..16
    # Stratified: every class has about a fifth of its images held out.
    for d in range(10):
        n_tr, n_ho = int((y_tr == d).sum()), int((y_ho == d).sum())
        assert 0.18 < n_ho / (n_tr + n_ho) < 0.22
    # The two splits share no image (the data has no exact duplicates across them).
    flat_tr, flat_ho = x_tr.flatten(1), x_ho.flatten(1)
    assert torch.cdist(flat_ho, flat_tr).min() > 0
    with pytest.raises(ValueError, match="split must be one of"):
        digits_split("test")


def test_make_dataset_draws_the_training_split_only():
    assert "digits" in IMAGE_DATASETS and DATA_SHAPES["digits"] == (1, 8, 8) and NUM_CLASSES["digits"] == 10
    x_tr, y_tr = digits_split("train")
    x, y = make_dataset("digits", 3000, seed=3)
    # Every draw is a training image with its own label; 3000 draws hold every training image (shuffled passes).
    d = torch.cdist(x.flatten(1), x_tr.flatten(1))  # [3000, 1438]
    nearest = d.argmin(1)
    assert d.min(1).values.max() == 0 and torch.equal(y_tr[nearest], y)
    assert len(nearest.unique()) == 1438
    counts = torch.bincount(nearest, minlength=1438)
    assert counts.min() >= 2 and counts.max() <= 3
    x_ho, _ = digits_split("heldout")
    assert torch.cdist(x.flatten(1), x_ho.flatten(1)).min() > 0


def test_shipped_digits_classifier_reads_heldout_digits():
    model = load_digits_classifier()
    acc = evaluate_digits_classifier(model, "heldout")
    card = json.loads(DIGITS_CLASSIFIER_PATH.with_suffix(".json").read_text())
    assert acc >= 0.95 and abs(acc - card["evaluation"]["heldout_accuracy"]) < 1e-9
    assert card["training"]["command"].startswith("python -m adiff.cli.classifier --dataset digits")
    assert classifier_for_shape((1, 8, 8)) is model
    with pytest.raises(ValueError, match=r"no shipped digit classifier reads images of shape \[1, 12, 12\]"):
        classifier_for_shape((1, 12, 12))


def test_classifier_reward_on_real_digits():
    x, y = digits_split("heldout")
    x = x[:40].clone().requires_grad_(True)
    rewards = torch.stack([make_reward("classifier_logprob", digit=d)(x) for d in range(10)], 1)  # [40, 10]
    assert (rewards.argmax(1) == y[:40]).float().mean() >= 0.9
    rewards[:, 3].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # The image rewards read 8x8 images too: ink ("brightness") is larger for an 8 than for a 1.
    bright = make_reward("brightness")(digits_split("train")[0])
    labels = digits_split("train")[1]
    assert bright[labels == 8].mean() > bright[labels == 1].mean()


def test_digits_preset_draws_the_requested_digits_and_not_copies():
    from adiff.eval.classifier import load_digits_classifier
    from adiff.presets import load_preset, preset_card, preset_spec

    model = load_preset("digits", device="cpu")
    labels = torch.arange(10).repeat(4)
    x, _ = model.generate(
        40, condition=labels, seed=0, sampler="ddim", num_steps=50, **preset_spec("digits").sample_kwargs
    )
    assert x.shape == (40, 1, 8, 8) and float(x.min()) >= -1.01 and float(x.max()) <= 1.01
    acc = (load_digits_classifier()(x).argmax(1) == labels).float().mean()
    assert acc >= 0.7, f"only {acc:.0%} of the digits were read as the requested digit"
    card = preset_card("digits")
    q = card["quality"]
    assert q["accuracy"] >= 0.9 and q["n"] >= 500
    copies = q["copy_check"]
    assert copies["share_closer_than_any_heldout"] <= 0.05 and copies["ratio_of_medians"] >= 0.8
    # Held-out real digits are as far from the training set as the samples are: the card's figures, recomputed.
    from adiff.eval.metrics import copy_check

    now = copy_check(x, digits_split("train")[0], digits_split("heldout")[0])
    assert now["heldout"] == copies["heldout"] and now["share_closer_than_any_heldout"] <= 0.1
    assert card["train_cpu_seconds"] <= 2 * 600  # <= 10 minutes on 2 cores, in CPU time (the machine is shared)


def test_rewards_steer_the_digits_preset():
    from adiff.presets import load_preset

    model = load_preset("digits", device="cpu")
    for reward in (make_reward("classifier_logprob", digit=3), make_reward("brightness")):
        kw = dict(condition=None, seed=1, sampler="ddim", num_steps=20, clip_x0=1.0, keep_every=10**6)
        base, _ = model.generate(16, **kw)
        guided, _ = model.generate(16, use_guidance=True, reward_fn=reward, guidance_scale=4.0, **kw)
        with torch.no_grad():
            assert reward(guided).mean() > reward(base).mean(), reward.name
