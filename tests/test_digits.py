"""The real handwritten digits (adiff.data.digits), their classifier and the classifier reward on them: the shipped
files, real data, no mocks."""
from __future__ import annotations

import json

import pytest
import torch

from adiff.data import DATA_SHAPES, IMAGE_DATASETS, NUM_CLASSES, digits_split, make_dataset
from adiff.data.digits import DIGITS_PATH, tensors_sha256
from adiff.eval.classifier import DIGITS_CLASSIFIER_PATH, classifier_for_shape, evaluate_digits_classifier, load_digits_classifier
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
