"""The weighted reservoir (priority sampling) keeps an unbiased picture of a whole weighted stream; a top-k buffer of
the best rewards does not.  And the weighted MMD reference used for 'distance to the tilted target'."""

import math

import pytest
import torch

from adiff.eval.metrics import MMDReference, mmd2
from adiff.steering.reservoir import WeightedReservoir


def _stream_into(res: WeightedReservoir, lam: float, batches: int, seed: int):
    """x ~ N(0, 1) in batches of 100, weight exp(lam x): the tilted distribution is N(lam, 1)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        x = torch.randn(100, 1, generator=g)
        res.add(x, lam * x[:, 0].double(), generator=g)
    return res


def test_reservoir_estimates_the_tilted_stream_whatever_its_length():
    # E over p exp(x) of x is 1 (N(0,1) tilted by exp(x) is N(1, 1)); capacity 200 of up to 20000 items
    for batches in (5, 50, 200):
        est = []
        for seed in range(6):
            res = _stream_into(WeightedReservoir(200), 1.0, batches, seed)
            w = torch.softmax(res.log_weights(), 0)
            est.append(float((w * res.items[:, 0].double()).sum()))
        assert abs(sum(est) / len(est) - 1.0) < 0.1, (batches, est)
    # a top-k of the same stream is the tail above its threshold: far over-tilted, and more so as the stream grows
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=g)
    top = x.topk(200).values.double()
    assert float((torch.softmax(top, 0) * top).sum()) > 2.5


def test_reservoir_draws_and_bookkeeping():
    res = WeightedReservoir(50)
    with pytest.raises(ValueError, match="empty"):
        res.sample(3)
    _stream_into(res, -1.0, 3, 0)
    assert len(res) == 50 and res.offered == 300 and math.isfinite(res.log_tau)
    assert torch.all(res.log_weights() >= res.log_tau) and torch.all(res.log_weights() >= res.log_w)
    x, lab = res.sample(1000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (1000, 1) and torch.all(lab == -1)
    assert float(x.mean()) < -0.5, "lambda < 0 favours low values"
    with pytest.raises(ValueError, match="log_w"):
        res.add(torch.zeros(2, 1), torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="capacity"):
        WeightedReservoir(0)
    res.clear()
    assert len(res) == 0 and res.log_tau == -math.inf


def test_weighted_mmd_reference_matches_mmd2_and_has_no_resampling_floor():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 2, generator=g), torch.randn(500, 2, generator=g) * 1.2 + 0.3
    assert MMDReference(y)(x) == pytest.approx(mmd2(x, y), rel=1e-9, abs=1e-12)
    # p = N(0, 1)^2 tilted by exp(x_1) is N((1, 0), 1): a weighted pool of p against exact samples of the tilt
    pool = torch.randn(1500, 2, generator=g)
    w = torch.softmax(pool[:, 0].double(), 0)
    ref = MMDReference(pool, w)
    exact = [torch.randn(256, 2, generator=g) + torch.tensor([1.0, 0.0]) for _ in range(4)]
    weighted = [ref(e) for e in exact]
    resampled = [mmd2(e, pool[torch.multinomial(w.float(), 1000, replacement=True, generator=g)]) for e in exact]
    assert max(abs(v) for v in weighted) < 3e-3, weighted
    assert ref(torch.randn(256, 2, generator=g)) > 0.02, "p itself is far from its tilt"
    # resampling repeats the heavy points, pairs at distance 0 that bias the y-y term upwards
    assert sum(resampled) / 4 > sum(weighted) / 4 + 5e-4, (resampled, weighted)
    with pytest.raises(ValueError, match="weights"):
        MMDReference(pool, torch.zeros(1500))
