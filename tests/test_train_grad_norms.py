"""Trainer(grad_norm_every=k): per-parameter gradient norms in the History, through checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn, optim
from tinygrad_bn import functional as F
from tinygrad_bn.train import History, Trainer

N, FEATURES, CLASSES, BATCH = 64, 6, 3, 16  # 4 batches per epoch


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, FEATURES))
    return x, np.argmax(x @ rng.standard_normal((FEATURES, CLASSES)), axis=1)


def model():
    rng = np.random.default_rng(1)
    return nn.Sequential(nn.Linear(FEATURES, 8, rng=rng), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, CLASSES, rng=rng))


def trainer(**kwargs):
    m = model()
    return Trainer(m, optim.SGD(m.parameters(), lr=0.1), train=data(), batch_size=BATCH,
                   epochs=3, seed=5, progress=False, eval_per_epoch=False, **kwargs)


def test_norms_are_those_of_the_gradients_each_recorded_step_used():
    t = trainer(grad_norm_every=3)
    history = t.fit()
    assert history.grad_norm_iteration == [1, 4, 7, 10]
    assert set(history.grad_norms) == {name for name, _ in t.model.named_parameters()}
    # the same training by hand: minibatch k of epoch e is default_rng(seed)'s e-th permutation
    m = model()
    sgd = optim.SGD(m.parameters(), lr=0.1)
    rng, expected, step = np.random.default_rng(5), {}, 0
    x, y = data()
    x = x.astype(np.float32)  # the Trainer converts the data to the model's dtype
    for _ in range(3):
        order = rng.permutation(N)
        for start in range(0, N, BATCH):
            rows = order[start:start + BATCH]
            sgd.zero_grad()
            F.cross_entropy(m(Tensor(x[rows])), y[rows]).backward()
            step += 1
            if step in history.grad_norm_iteration:
                for name, p in m.named_parameters():
                    expected.setdefault(name, []).append(np.linalg.norm(p.grad.data.astype(np.float64)))
            sgd.step()
    for name, norms in expected.items():
        np.testing.assert_allclose(history.grad_norms[name], norms, rtol=1e-12)
    assert trainer().fit().grad_norms == {}  # off by default


def test_grad_norms_survive_a_checkpoint_and_resume_keeps_recording(tmp_path):
    full = trainer(grad_norm_every=2).fit()
    first = trainer(grad_norm_every=2, checkpoint_path=tmp_path / "run.npz")
    first.epochs = 1
    first.fit()
    resumed = trainer(grad_norm_every=2)
    resumed.resume(tmp_path / "run.npz")
    assert resumed.history.grad_norm_iteration == [1, 3]
    history = resumed.fit()
    assert history.grad_norm_iteration == full.grad_norm_iteration == [1, 3, 5, 7, 9, 11]
    assert history.grad_norms == full.grad_norms


def test_history_arrays_without_grad_norms_still_load_and_bad_ones_are_refused():
    h = trainer(grad_norm_every=4).fit()
    arrays = h.to_arrays()
    assert History.from_arrays(arrays) == h
    plain = {k: v for k, v in arrays.items() if not k.startswith("grad_norm")}
    assert History.from_arrays(plain).grad_norms == {}
    broken = dict(arrays)
    broken["grad_norm/0.weight"] = broken["grad_norm/0.weight"][:-1]
    with pytest.raises(ValueError, match="one value per grad_norm_iteration"):
        History.from_arrays(broken)
    with pytest.raises(ValueError, match="grad_norm_every must be an int >= 1 or None, got 0"):
        trainer(grad_norm_every=0)
