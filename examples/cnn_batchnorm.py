"""A small CNN with BatchNorm2d on the embedded MNIST digits: two conv-BN-ReLU-pool blocks.

    python examples/cnn_batchnorm.py [--epochs 5] [--norm batch|group|none] [--impl fused|composed]

The network is Conv2d(1, 16, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2),
Conv2d(16, 32, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2), Flatten,
Linear(1568, 10), with PyTorch's default initialisation, trained with Adam (lr
3e-3, cosine decay per epoch, batches of 50) on the 4,000 training digits and
evaluated on the 1,000 test digits. It prints one line per epoch (loss, train and
test accuracy, seconds so far). On this project's 2-core machine, float32, one
BLAS thread: 98.2% test accuracy after 5 epochs, in about 20 s (seed 0; the runs
are in docs/convolution.md). --norm group puts GroupNorm(4, C)
where BatchNorm2d is; --norm none leaves it out.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tinygrad_bn import Tensor, nn, no_grad, optim
from tinygrad_bn import functional as F
from tinygrad_bn.data import load_mnist5k
from tinygrad_bn.experiments.parallel import single_threaded_blas


def build_cnn(norm: str = "batch", impl: str = "fused", channels: tuple[int, int] = (16, 32),
              seed: int = 0) -> nn.Sequential:
    """Two conv-norm-ReLU-pool blocks and a linear classifier for (N, 1, 28, 28) digits."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for c_in, c_out in zip((1, *channels[:-1]), channels):
        # A conv bias before a norm layer is cancelled by its centring: leave it out.
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none", rng=rng, impl=impl))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out, impl=impl))
        elif norm == "group":
            layers.append(nn.GroupNorm(4, c_out, impl=impl))
        layers += [nn.ReLU(), nn.MaxPool2d(2, impl=impl)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels[-1] * 7 * 7, 10, rng=rng))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction classified correctly, in evaluation mode (BatchNorm's running statistics)."""
    model.eval()
    with no_grad():
        guesses = np.concatenate([model(Tensor(x[i:i + 500])).data.argmax(axis=1)
                                  for i in range(0, len(x), 500)])
    model.train()
    return float(np.mean(guesses == y))


def main(epochs: int = 5, norm: str = "batch", impl: str = "fused", train_size: int = 4000,
         test_size: int = 1000, lr: float = 3e-3, batch_size: int = 50, seed: int = 0,
         log: Any = print) -> list[dict[str, float]]:
    """Train and evaluate; returns one dict per epoch (loss, train_acc, test_acc, seconds)."""
    (x_train, y_train), (x_test, y_test) = load_mnist5k(flatten=False)
    x_train, y_train = x_train[:train_size], y_train[:train_size]
    x_test, y_test = x_test[:test_size], y_test[:test_size]
    model = build_cnn(norm, impl, seed=seed)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    order_rng = np.random.default_rng(seed + 1)
    history, start = [], time.perf_counter()
    for epoch in range(epochs):
        order = order_rng.permutation(len(x_train))
        for first in range(0, len(x_train), batch_size):
            rows = order[first:first + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(Tensor(x_train[rows])), y_train[rows])
            loss.backward()
            optimizer.step()
        schedule.step()
        record = {"epoch": epoch + 1, "loss": float(loss.data),
                  "train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test),
                  "seconds": time.perf_counter() - start}
        history.append(record)
        log(f"epoch {record['epoch']}: loss {record['loss']:.3f}, train {record['train_acc']:.3f}, "
            f"test {record['test_acc']:.3f}, {record['seconds']:.1f} s")
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--norm", choices=("batch", "group", "none"), default="batch")
    parser.add_argument("--impl", choices=("fused", "composed"), default="fused")
    args = parser.parse_args()
    with single_threaded_blas():  # small matrix products: one BLAS thread is faster on 2 cores
        main(args.epochs, args.norm, args.impl)
