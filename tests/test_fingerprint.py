"""adiff.data.data_fingerprint: one training set, one fingerprint; any change of a value, the order, a label or the
shape gives another; the dtype and device it is held in do not matter."""

import pytest
import torch

from adiff.data import data_fingerprint


def test_a_fingerprint_follows_the_data_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 1, 4, 4, generator=g)
    labels = torch.arange(100) % 10
    fp = data_fingerprint(x, labels)
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 16
    assert data_fingerprint(x.clone(), labels.clone()) == fp
    assert data_fingerprint(x.double(), labels.int()) == fp  # held as float64 / int32: the same values
    changed = x.clone()
    changed[3, 0, 1, 2] += 1e-3
    others = {
        data_fingerprint(changed, labels),
        data_fingerprint(x.flip(0), labels.flip(0)),  # the same images, another order
        data_fingerprint(x, (labels + 1) % 10),
        data_fingerprint(x, None),
        data_fingerprint(x.reshape(100, 16), labels),
    }
    assert fp not in others and len(others) == 5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="x must be a tensor"):
        data_fingerprint([1, 2])
    with pytest.raises(ValueError, match="labels must be a tensor \\[N\\] with N = 3"):
        data_fingerprint(torch.zeros(3, 2), torch.zeros(4))
