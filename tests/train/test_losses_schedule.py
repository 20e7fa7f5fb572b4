"""Losses and schedules: values checked against hand computations."""
import math

import pytest

torch = pytest.importorskip("torch")

from dynmm_edge.train import losses as L
from dynmm_edge.train.schedule import one_cycle_lr, temperature_at


def test_class_weights_rare_higher_absent_zero_mean_one():
    w = L.class_weights_from_counts([1000, 0, 10, 100], 4)
    assert w[1] == 0.0
    assert w[2] > w[3] > w[0] > 0
    present = w[[0, 2, 3]]
    assert float(present.mean()) == pytest.approx(1.0, abs=1e-6)


def test_label_counts_ignores_void():
    import numpy as np
    lab = np.array([[0, 1, 255], [1, 1, 9]], np.uint8)
    assert L.label_counts([lab], 3).tolist() == [1, 3, 0]


def test_resource_loss_relu_and_gradient():
    costs = L.normalised_path_costs([0, 10, 40])
    assert costs.tolist() == pytest.approx([0.0, 0.25, 1.0])
    logits = torch.tensor([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]], requires_grad=True)
    probs = torch.softmax(logits, 1)
    expected = float((probs.detach() * costs).sum(1).mean())
    loss = L.resource_loss(probs, costs, budget=0.2, lam=2.0)
    assert loss.item() == pytest.approx(2.0 * (expected - 0.2), rel=1e-5)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    under = L.resource_loss(torch.tensor([[1.0, 0.0, 0.0]]), costs, budget=0.2, lam=2.0)
    assert float(under) == 0.0


def test_straight_through_hard_forward_soft_backward():
    logits = torch.tensor([[1.0, 3.0, 2.0]], requires_grad=True)
    hard, soft = L.straight_through(logits, temperature=0.5)
    assert hard.tolist() == [[0.0, 1.0, 0.0]]
    assert float(soft.detach().sum()) == pytest.approx(1.0)
    (hard * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    g = torch.Generator().manual_seed(0)
    h1, _ = L.straight_through(logits.detach(), 1.0, gumbel=True, generator=g)
    assert float(h1.sum()) == 1.0


def test_segmentation_loss_all_void_is_zero():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    labels = torch.full((1, 4, 4), 255, dtype=torch.long)
    loss = L.segmentation_loss(logits, labels)
    assert loss.item() == 0.0 and bool(torch.isfinite(loss))


def test_temperature_schedule_endpoints_and_monotone():
    vals = [temperature_at(s, 100, 1.0, 1e-3) for s in range(100)]
    assert vals[0] == pytest.approx(1.0)
    assert vals[-1] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(vals, vals[1:]))
    assert vals[50] == pytest.approx(math.exp(math.log(1e-3) * 50 / 99), rel=1e-6)


def test_one_cycle_shape():
    lrs = [one_cycle_lr(s, 100, 0.1) for s in range(100)]
    peak = max(range(100), key=lambda i: lrs[i])
    assert peak == 10 and lrs[peak] == pytest.approx(0.1)
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e3, rel=1e-3)
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_oracle_paths_pick_cheapest_path_within_tolerance():
    from dynmm_edge.train.loop import oracle_paths
    per = torch.tensor([[0.50, 0.40, 0.31, 0.30, 0.30, 0.30],   # path 2 is within 0.02 of full depth
                        [0.90, 0.80, 0.70, 0.60, 0.40, 0.30],   # only full depth is good enough
                        [0.30, 0.30, 0.30, 0.30, 0.30, 0.30]])  # depth does not help: path 0
    assert oracle_paths(per, 0.02).tolist() == [2, 5, 0]
    assert oracle_paths(per, 0.5).tolist() == [0, 1, 0]


def test_cosine_lr_decays_from_the_peak_to_zero_and_clamps():
    from dynmm_edge.train.schedule import cosine_lr
    lrs = [cosine_lr(s, 100, 1e-2) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-2) and lrs[50] == pytest.approx(5e-3) and lrs[100] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert cosine_lr(-5, 100, 1e-2) == pytest.approx(1e-2) and cosine_lr(500, 100, 1e-2) == pytest.approx(0.0)
