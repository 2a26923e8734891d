"""Deep Learning from Scratch, chapter 6, batch_norm_test: does BatchNorm rescue a bad init?

Usage:
    python examples/dlfs_batchnorm_test.py [--quick] [--out DIR]

For each of 16 initial weight scales (logspace(0, -4)), trains the book's
MultiLayerNetExtend (784-100-100-100-100-100-10, ReLU) with and without batch
normalisation on 1,000 MNIST training digits (SGD, lr 0.01, batch 100, 20 epochs)
and prints the book's progress lines, "epoch:E | accuracy_without - accuracy_with".
Writes DIR/dlfs_batchnorm_test.png, a 4x4 grid of training accuracy per weight
scale (DIR defaults to the current directory). Full MNIST is used when its IDX files
are in the data directory, else the embedded 5,000 digits (load_mnist says which on
stderr). --quick: 4 weight scales, 3 epochs, 200 digits, in a few seconds.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinygrad_bn.compat.dlfs import SGD, MultiLayerNetExtend, load_mnist  # noqa: E402
from tinygrad_bn.experiments.plots import save_png  # noqa: E402

BATCH_SIZE, LEARNING_RATE = 100, 0.01


def train(x_train, t_train, weight_init_std, max_epochs):
    """The book's __train: both nets see the same minibatches; accuracy once per epoch."""
    bn_network = MultiLayerNetExtend(input_size=784, hidden_size_list=[100] * 5, output_size=10,
                                     weight_init_std=weight_init_std, use_batchnorm=True)
    network = MultiLayerNetExtend(input_size=784, hidden_size_list=[100] * 5, output_size=10,
                                  weight_init_std=weight_init_std)
    optimizer = SGD(lr=LEARNING_RATE)
    train_acc_list, bn_train_acc_list = [], []
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size / BATCH_SIZE, 1)
    epoch_cnt = 0
    for i in range(1_000_000_000):
        batch_mask = np.random.choice(train_size, BATCH_SIZE)
        x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
        for _network in (bn_network, network):
            grads = _network.gradient(x_batch, t_batch)
            optimizer.update(_network.params, grads)
        if i % iter_per_epoch == 0:
            train_acc = network.accuracy(x_train, t_train)
            bn_train_acc = bn_network.accuracy(x_train, t_train)
            train_acc_list.append(train_acc)
            bn_train_acc_list.append(bn_train_acc)
            print("epoch:" + str(epoch_cnt) + " | " + str(train_acc) + " - " + str(bn_train_acc))
            epoch_cnt += 1
            if epoch_cnt >= max_epochs:
                break
    return train_acc_list, bn_train_acc_list


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced configuration (seconds)")
    parser.add_argument("--out", type=Path, default=Path("."), help="where to write the PNG")
    args = parser.parse_args(argv)
    (x_train, t_train), _ = load_mnist(normalize=True)
    n_train, max_epochs, n_scales = (200, 3, 4) if args.quick else (1000, 20, 16)
    x_train, t_train = x_train[:n_train], t_train[:n_train]
    weight_scale_list = np.logspace(0, -4, num=n_scales)
    epochs = np.arange(max_epochs)
    side = int(np.ceil(np.sqrt(n_scales)))
    fig = plt.figure(figsize=(12, 10))
    for i, w in enumerate(weight_scale_list):
        print("============== " + str(i + 1) + "/" + str(n_scales) + " ==============")
        train_acc_list, bn_train_acc_list = train(x_train, t_train, w, max_epochs)
        ax = fig.add_subplot(side, side, i + 1)
        ax.set_title("W:" + f"{w:.4g}")
        ax.plot(epochs, bn_train_acc_list, label="Batch Normalization", markevery=2)
        ax.plot(epochs, train_acc_list, linestyle="--", label="Normal(without BatchNorm)", markevery=2)
        ax.set_ylim(0, 1.0)
        if i % side:
            ax.set_yticks([])
        else:
            ax.set_ylabel("accuracy")
        if i < n_scales - side:
            ax.set_xticks([])
        else:
            ax.set_xlabel("epochs")
        if i == n_scales - 1:
            ax.legend(loc="lower right")
    fig.tight_layout()
    path = save_png(fig, args.out / "dlfs_batchnorm_test.png", dpi=80)
    plt.close(fig)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
