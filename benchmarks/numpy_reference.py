"""The dlfs-init-sweep networks written by hand in plain numpy: no autograd, no framework.

This is the yardstick `bench_sweep.py` measures tinygrad_bn against: the same
784-100-100-100-100-100-10 MLPs (with and without BatchNorm before each ReLU),
the same initialisation, minibatches and evaluation schedule as
`tinygrad_bn.experiments.dlfs_init_sweep`, with every forward and backward
written out as the few numpy lines a careful person would write. It imports
nothing from tinygrad_bn, so it is also an independent cross-check: with the
same seed it reproduces the experiment's accuracy curves.

The protocol both implementations follow, per weight scale (task index i):
  rng = default_rng(SeedSequence([seed, i]))
  BN net:    for each layer, W = scale * rng.standard_normal((fan_in, fan_out)), b = 0;
             BatchNorm gamma = 1, beta = 0, running mean 0, running var 1
  plain net: the same draws, after the BN net's
  each step: rows = rng.integers(0, n_train, batch) (with replacement, as the
             book's np.random.choice); SGD step on the BN net, then the plain net
  step i % eval_every == 0: training accuracy of both (BN in eval mode, i.e.
             running statistics) on all n_train examples; stop after `evaluations`.

BatchNorm follows PyTorch (momentum 0.1 = the fraction of the batch statistic
taken in, biased variance to normalise, unbiased variance into running_var)
with the book's eps, 1e-6.

Usage: python benchmarks/numpy_reference.py [--dtype float32] [--scales 16]
prints the final accuracies of each scale and the wall time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np

HIDDEN_SIZES = (100, 100, 100, 100, 100)
BN_MOMENTUM = 0.1
BOOK_BN_EPS = 1e-6  # the book writes 10e-7


@dataclass
class Net:
    """One MLP: weights (fan_in, fan_out), biases, and BatchNorm state if `use_bn`."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    use_bn: bool
    eps: float = BOOK_BN_EPS
    gammas: list[np.ndarray] = field(default_factory=list)
    betas: list[np.ndarray] = field(default_factory=list)
    running_means: list[np.ndarray] = field(default_factory=list)
    running_vars: list[np.ndarray] = field(default_factory=list)


def init_net(
    sizes: list[int],
    scale: float,
    use_bn: bool,
    rng: np.random.Generator,
    dtype: np.dtype,
    eps: float = BOOK_BN_EPS,
) -> Net:
    """Weights scale * N(0, 1) drawn layer by layer, biases 0, gamma 1, beta 0."""
    net = Net([], [], use_bn, eps)
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        net.weights.append((scale * rng.standard_normal((fan_in, fan_out))).astype(dtype))
        net.biases.append(np.zeros(fan_out, dtype=dtype))
    if use_bn:
        for width in sizes[1:-1]:
            net.gammas.append(np.ones(width, dtype=dtype))
            net.betas.append(np.zeros(width, dtype=dtype))
            net.running_means.append(np.zeros(width, dtype=dtype))
            net.running_vars.append(np.ones(width, dtype=dtype))
    return net


def predict(net: Net, x: np.ndarray) -> np.ndarray:
    """Logits in evaluation mode (BatchNorm uses its running statistics)."""
    h = x
    last = len(net.weights) - 1
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        h = h @ w + b
        if k == last:
            break
        if net.use_bn:
            inv_std = 1.0 / np.sqrt(net.running_vars[k] + net.eps)
            h = (h - net.running_means[k]) * (inv_std * net.gammas[k]) + net.betas[k]
        h = np.maximum(h, 0)
    return h


def accuracy(net: Net, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of `x` whose argmax logit is the label."""
    return float(np.mean(np.argmax(predict(net, x), axis=1) == y))


def sgd_step(net: Net, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    """One training-mode forward, hand-written backward and SGD update; returns the loss."""
    n = x.shape[0]
    last = len(net.weights) - 1
    inputs, bn_caches, relu_masks = [], [], []
    h = x
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        inputs.append(h)
        h = h @ w + b
        if k == last:
            break
        if net.use_bn:
            mean = h.mean(axis=0)
            centred = h - mean
            var = np.mean(centred * centred, axis=0)
            inv_std = 1.0 / np.sqrt(var + net.eps)
            xhat = centred * inv_std
            bn_caches.append((xhat, inv_std))
            m = BN_MOMENTUM
            net.running_means[k] *= 1 - m
            net.running_means[k] += m * mean
            net.running_vars[k] *= 1 - m
            net.running_vars[k] += m * var * (n / (n - 1))
            h = xhat * net.gammas[k] + net.betas[k]
        mask = h > 0
        relu_masks.append(mask)
        h = h * mask

    # Softmax cross-entropy, mean over the batch.
    shifted = h - h.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sum_exp[:, 0]) - shifted[np.arange(n), y]))
    grad = exp / sum_exp
    grad[np.arange(n), y] -= 1
    grad /= n

    for k in range(last, -1, -1):
        if k < last:
            grad = grad * relu_masks[k]
            if net.use_bn:
                xhat, inv_std = bn_caches[k]
                dgamma = np.sum(grad * xhat, axis=0)
                dbeta = grad.sum(axis=0)
                dxhat = grad * net.gammas[k]
                # The closed form of d(loss)/dx for y = gamma * (x - mean) / std + beta.
                grad = (inv_std / n) * (
                    n * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0)
                )
                net.gammas[k] -= lr * dgamma
                net.betas[k] -= lr * dbeta
        dw = inputs[k].T @ grad
        db = grad.sum(axis=0)
        if k > 0:
            grad = grad @ net.weights[k].T
        net.weights[k] -= lr * dw
        net.biases[k] -= lr * db
    return loss


def train_pair(
    x: np.ndarray,
    y: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    evaluations: int = 20,
    eval_every: int = 10,
    batch_size: int = 100,
    lr: float = 0.01,
    num_classes: int = 10,
    bn_eps: float = BOOK_BN_EPS,
) -> dict[str, dict[str, list[float]]]:
    """Train the BN and plain nets in lockstep: {"bn"/"plain": {"train_acc", "loss"}}."""
    sizes = [x.shape[1], *HIDDEN_SIZES, num_classes]
    bn_net = init_net(sizes, scale, True, rng, x.dtype, bn_eps)
    plain_net = init_net(sizes, scale, False, rng, x.dtype)
    nets = {"bn": bn_net, "plain": plain_net}
    curves: dict[str, dict[str, list[float]]] = {k: {"train_acc": [], "loss": []} for k in nets}
    step = 0
    while True:
        rows = rng.integers(0, x.shape[0], batch_size)
        xb, yb = x[rows], y[rows]
        for key, net in nets.items():
            curves[key]["loss"].append(sgd_step(net, xb, yb, lr))
        if step % eval_every == 0:
            for key, net in nets.items():
                curves[key]["train_acc"].append(accuracy(net, x, y))
            if len(curves["bn"]["train_acc"]) >= evaluations:
                return curves
        step += 1


def run_sweep(
    x: np.ndarray,
    y: np.ndarray,
    scales: np.ndarray,
    seed: int = 0,
    evaluations: int = 20,
    batch_size: int = 100,
    bn_eps: float = BOOK_BN_EPS,
) -> list[dict[str, dict[str, list[float]]]]:
    """`train_pair` for each scale, task i seeded from (seed, i); the book's schedule."""
    # The book evaluates once per "epoch" of train_size / batch_size iterations.
    eval_every = max(x.shape[0] // batch_size, 1)
    return [
        train_pair(x, y, float(s), np.random.default_rng(np.random.SeedSequence([seed, i])),
                   evaluations=evaluations, eval_every=eval_every, batch_size=batch_size,
                   bn_eps=bn_eps)
        for i, s in enumerate(scales)
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the sweep on the embedded digits and print final accuracies and wall time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--scales", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from tinygrad_bn.data import load_mnist5k  # only to fetch the digits, not to compute

    (x_train, y_train), _ = load_mnist5k()
    x, y = x_train[:1000].astype(args.dtype), y_train[:1000]
    scales = np.logspace(0, -4, args.scales)
    start = time.perf_counter()
    with np.errstate(all="ignore"):  # plain nets at large scales diverge, as they should
        curves = run_sweep(x, y, scales, args.seed)
    seconds = time.perf_counter() - start
    for s, c in zip(scales, curves):
        print(f"scale {s:9.3e}  BN {c['bn']['train_acc'][-1]:.3f}  "
              f"plain {c['plain']['train_acc'][-1]:.3f}")
    print(f"{len(scales)} scales in {seconds:.2f} s ({args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
