import math

import pytest
import torch

from adiff.steering.buffer import BufferSample, BufferSnapshot, TrajectoryBuffer


def _filled(rewards, shape=(2,), capacity=None, temperature=1.0):
    buf = TrajectoryBuffer(capacity or max(len(rewards), 1), temperature=temperature)
    for i, r in enumerate(rewards):
        buf.add(torch.full(shape, float(i)), r)
    return buf


def _state_equal(a: dict, b: dict) -> bool:
    for k in a:
        if isinstance(a[k], torch.Tensor):
            if a[k].shape != b[k].shape or not torch.equal(a[k], b[k]):
                return False
        elif a[k] != b[k]:
            return False
    return set(a) == set(b)


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize("cap", [0, -1, 100_001, 2.5, True, "10", None])
def test_bad_capacity(cap):
    with pytest.raises(ValueError, match="capacity"):
        TrajectoryBuffer(cap)


@pytest.mark.parametrize("t", [0, -1.0, math.inf, math.nan, "1", True])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="temperature"):
        TrajectoryBuffer(4, temperature=t)
    buf = TrajectoryBuffer(4)
    with pytest.raises(ValueError, match="temperature"):
        buf.temperature = t
    assert buf.temperature == 1.0


# ------------------------------------------------------------------ capacity and eviction
def test_capacity_respected_and_lowest_evicted():
    buf = TrajectoryBuffer(3)
    for i, r in enumerate([5.0, 1.0, 3.0, 4.0, 2.0, 6.0]):
        buf.add(torch.full((2,), float(i)), r)
        assert len(buf) == buf.size() <= 3
    assert buf.capacity == 3 and buf.step == 6
    assert sorted(buf.rewards().tolist()) == [4.0, 5.0, 6.0]
    snap = buf.snapshot()
    assert snap.rewards.tolist() == [6.0, 5.0, 4.0]
    assert snap.samples[:, 0].tolist() == [5.0, 0.0, 3.0]  # the items that carried those rewards
    assert snap.age.tolist() == [5, 0, 3]


def test_new_worst_item_rejected_when_full():
    buf = _filled([1.0, 2.0, 3.0])
    before = buf.state_dict()
    assert buf.add(torch.zeros(2), 0.5) is False
    after = buf.state_dict()
    assert after["step"] == before["step"] + 1  # it was offered ...
    before["step"] += 1
    assert _state_equal(before, after)  # ... but nothing else changed


def test_ties_evict_the_oldest():
    buf = _filled([1.0, 1.0, 2.0])
    assert buf.add(torch.full((2,), 9.0), 1.0) is True  # equal to the minimum: the oldest minimum goes
    snap = buf.snapshot()
    assert sorted(snap.age.tolist()) == [1, 2, 3]


def test_add_accepts_tensor_reward_and_returns_kept():
    buf = TrajectoryBuffer(2)
    assert buf.add(torch.zeros(3, 2), torch.tensor(1.5)) is True
    assert buf.item_shape == (3, 2)
    assert buf.rewards().tolist() == [1.5]


# ------------------------------------------------------------------ priorities
@pytest.mark.parametrize("rewards", [[1e6, -1e6, 0.0], [800.0, 799.0, 1.0], [710.0, 720.0], [0.0, 0.0, 0.0], [3.0]])
def test_priorities_finite_and_normalised(rewards):
    buf = _filled(rewards)
    p = buf.priorities()
    assert p.shape == (len(rewards),)
    assert torch.isfinite(p).all() and (p > 0).all()
    assert abs(float(p.sum()) - 1.0) < 1e-5
    order_r = torch.tensor(rewards).argsort()
    assert torch.all(p[order_r][1:] >= p[order_r][:-1])  # monotone in reward


def test_priorities_not_degenerate_and_scale_free():
    buf = _filled([float(i) for i in range(100)])
    p = buf.priorities()
    assert float(p.max()) < 0.2
    scaled = _filled([1000.0 * i - 5e5 for i in range(100)])
    assert torch.allclose(scaled.priorities(), p, atol=1e-6)
    equal = _filled([7.0] * 5)
    assert torch.allclose(equal.priorities(), torch.full((5,), 0.2))


def test_temperature_sharpens():
    hot = _filled([float(i) for i in range(10)], temperature=10.0).priorities()
    cold = _filled([float(i) for i in range(10)], temperature=0.1).priorities()
    assert cold.max() > hot.max()
    tiny = _filled([float(i) for i in range(10)], temperature=1e-4)
    s = tiny.sample(10, generator=torch.Generator().manual_seed(0))  # even with near-zero priorities
    assert sorted(s.indices.tolist()) == list(range(10))


# ------------------------------------------------------------------ sampling
def test_sample_stacked_without_replacement():
    buf = TrajectoryBuffer(50)
    buf.add_batch(torch.randn(20, 3, 2, generator=torch.Generator().manual_seed(0)), torch.arange(20.0))
    g = torch.Generator().manual_seed(1)
    s = buf.sample(8, generator=g)
    assert isinstance(s, BufferSample)
    assert s.samples.shape == (8, 3, 2) and s.samples.dtype == torch.float32
    assert s.rewards.shape == (8,) and s.indices.shape == (8,) and s.indices.dtype == torch.long
    assert len(set(s.indices.tolist())) == 8
    assert torch.equal(s.rewards, buf.rewards()[s.indices])
    s_all = buf.sample(100, generator=g)  # b = min(batch_size, size)
    assert sorted(s_all.indices.tolist()) == list(range(20))
    s.samples.add_(1000.0)  # a copy: the buffer is untouched
    assert buf.snapshot().samples.abs().max() < 100


def test_sample_reproducible_with_generator():
    buf = _filled([float(i) for i in range(30)])
    a = buf.sample(5, generator=torch.Generator().manual_seed(3)).indices
    b = buf.sample(5, generator=torch.Generator().manual_seed(3)).indices
    assert torch.equal(a, b)


def test_sampling_frequency_follows_priority():
    buf = _filled([0.0, 1.0, 2.0, 3.0, 4.0])
    p = buf.priorities()
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(5)
    n = 4000
    for _ in range(n):
        counts[buf.sample(1, generator=g).indices] += 1
    freq = counts / n
    assert torch.allclose(freq, p, atol=0.03)
    assert counts.argmax() == 4 and counts.argmin() == 0


def test_sample_edge_cases():
    buf = TrajectoryBuffer(4)
    with pytest.raises(ValueError, match="empty buffer"):
        buf.sample(2)
    buf.add(torch.zeros(2, 3), 1.0)
    assert buf.sample(0).samples.shape == (0, 2, 3)
    buf.clear()
    assert buf.item_shape is None and len(buf) == 0 and buf.step == 0
    buf2 = _filled([1.0])
    for bad in [-1, 1.5, "2", None, True]:
        with pytest.raises(ValueError, match="batch_size"):
            buf2.sample(bad)


# ------------------------------------------------------------------ batches
@pytest.mark.parametrize("capacity", [1, 5, 12, 40])
def test_add_batch_equals_sequential_adds(capacity):
    g = torch.Generator().manual_seed(capacity)
    seq, bat = TrajectoryBuffer(capacity), TrajectoryBuffer(capacity)
    for step in range(6):
        items = torch.randn(7, 2, 2, generator=g)
        rewards = torch.randint(0, 6, (7,), generator=g).double()  # many ties on purpose
        meta = [{"t": [step, j]} for j in range(7)]
        kept_seq = [seq.add(items[j], float(rewards[j]), meta[j]) for j in range(7)]
        kept_bat = bat.add_batch(items, rewards, meta)
        assert _state_equal(seq.state_dict(), bat.state_dict())
        # kept_bat says what survived the whole batch; an item kept by add() may be evicted later in the batch
        assert all(ks for ks, kb in zip(kept_seq, kept_bat.tolist()) if kb)


def test_add_batch_empty_and_sequence_rewards():
    buf = TrajectoryBuffer(3)
    assert buf.add_batch(torch.zeros(0, 2), []).shape == (0,)
    assert len(buf) == 0
    kept = buf.add_batch(torch.zeros(4, 2), [1, 2, 3, 4])
    assert kept.tolist() == [False, True, True, True] and len(buf) == 3


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda b: b.add(torch.zeros(3), 1.0), "trajectory"),
        (lambda b: b.add(torch.zeros(2), math.nan), "reward"),
        (lambda b: b.add(torch.zeros(2), math.inf), "reward"),
        (lambda b: b.add(torch.zeros(2), "1"), "reward"),
        (lambda b: b.add([0.0, 0.0], 1.0), "trajectory"),
        (lambda b: b.add(torch.tensor([0.0, math.nan]), 1.0), "trajectory"),
        (lambda b: b.add(torch.zeros(2), 1.0, metadata="t=3"), "metadata"),
        (lambda b: b.add_batch(torch.zeros(3, 2), torch.tensor([1.0, math.nan, 2.0])), "rewards"),
        (lambda b: b.add_batch(torch.zeros(3, 2), torch.ones(2)), "rewards"),
        (lambda b: b.add_batch(torch.zeros(3, 3), torch.ones(3)), "items"),
        (lambda b: b.add_batch(torch.zeros(3, 2), torch.ones(3), metadata=[{}]), "metadata"),
    ],
)
def test_invalid_input_leaves_buffer_unchanged(call, field):
    buf = _filled([1.0, 2.0, 3.0], capacity=3)
    before = buf.state_dict()
    with pytest.raises(ValueError, match=field):
        call(buf)
    assert _state_equal(before, buf.state_dict())


# ------------------------------------------------------------------ snapshot, best, state
def test_snapshot_is_a_sorted_copy():
    buf = TrajectoryBuffer(5)
    buf.add_batch(torch.arange(10.0).reshape(5, 2), [3.0, 1.0, 4.0, 1.5, 9.0], [{"i": i} for i in range(5)])
    snap = buf.snapshot()
    assert isinstance(snap, BufferSnapshot)
    assert snap.rewards.tolist() == [9.0, 4.0, 3.0, 1.5, 1.0]
    assert [m["i"] for m in snap.metadata] == [4, 2, 0, 3, 1]
    assert torch.allclose(snap.priorities.sum(), torch.tensor(1.0))
    snap.samples.zero_()
    snap.rewards.zero_()
    snap.metadata[0]["i"] = -1
    again = buf.snapshot()
    assert again.samples.abs().sum() > 0 and again.rewards[0] == 9.0 and again.metadata[0]["i"] == 4
    best = buf.best(2)
    assert best.rewards.tolist() == [9.0, 4.0] and best.samples.shape == (2, 2)
    assert buf.best(100).rewards.shape == (5,)
    with pytest.raises(ValueError, match="k must be"):
        buf.best(-1)


def test_state_dict_round_trip():
    buf = TrajectoryBuffer(6, temperature=0.5)
    buf.add_batch(
        torch.randn(9, 4, generator=torch.Generator().manual_seed(0)), torch.arange(9.0), [{"t": [i]} for i in range(9)]
    )
    state = buf.state_dict()
    other = TrajectoryBuffer(2)
    other.load_state_dict(state)
    assert _state_equal(other.state_dict(), state)
    assert other.capacity == 6 and other.temperature == 0.5 and len(other) == 6
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(buf.sample(3, generator=g1).samples, other.sample(3, generator=g2).samples)
    other.add(torch.zeros(4), 100.0)  # the restored buffer works on, independently
    assert len(buf) == 6 and buf.snapshot().rewards[0] == 8.0
    state["samples"].zero_()  # state_dict holds copies
    assert buf.snapshot().samples.abs().sum() > 0
    restored = TrajectoryBuffer.from_state_dict(TrajectoryBuffer(3).state_dict())
    assert len(restored) == 0 and restored.item_shape is None


def test_load_state_dict_invalid_leaves_buffer_unchanged():
    buf = _filled([1.0, 2.0])
    before = buf.state_dict()
    bad = dict(before, rewards=torch.tensor([1.0, math.nan]))
    with pytest.raises(ValueError, match="rewards"):
        buf.load_state_dict(bad)
    with pytest.raises(ValueError, match="capacity"):
        buf.load_state_dict(dict(before, capacity=1))
    with pytest.raises(ValueError, match="missing"):
        buf.load_state_dict({"capacity": 3})
    assert _state_equal(before, buf.state_dict())
