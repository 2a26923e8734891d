"""The book's ``common.trainer``: Trainer, minibatch training with per-epoch accuracy.

Minibatches are ``np.random.choice(train_size, mini_batch_size)`` (with
replacement); after each update the minibatch loss is recomputed and recorded;
accuracy on the train and test sets (or their first evaluate_sample_num_per_epoch
examples) is measured whenever the iteration count is a multiple of the
(fractional) iterations per epoch, as in the book. The optimizer is named by
string. Like the book's file, this module also exports the optimizers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat.dlfs.common import optimizer as _optimizer
from tinygrad_bn.compat.dlfs.common.optimizer import *

__all__ = ["np", "Trainer", *_optimizer.__all__]

OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam}


class Trainer:
    """Trains `network` (with params, gradient, loss, accuracy) by the named optimizer."""

    def __init__(
        self,
        network: Any,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: dict[str, Any] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
    ):
        for name in ("params", "gradient", "loss", "accuracy"):
            if not hasattr(network, name):
                raise TypeError(f"Trainer: network must have {name!r} (params, gradient, loss, accuracy)")
        if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"Trainer: optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
        if len(x_train) != len(t_train) or len(x_test) != len(t_test):
            raise ValueError(
                f"Trainer: {len(x_train)} training images vs {len(t_train)} labels, {len(x_test)} test "
                f"images vs {len(t_test)} labels; expected equal counts"
            )
        self.network = network
        self.verbose = verbose
        self.x_train, self.t_train, self.x_test, self.t_test = x_train, t_train, x_test, t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        params = {"lr": 0.01} if optimizer_param is None else optimizer_param
        self.optimizer = OPTIMIZERS[optimizer.lower()](**params)
        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[Any] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []

    def train_step(self) -> None:
        """One minibatch update; at an epoch boundary, the train and test accuracies."""
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch, t_batch = self.x_train[batch_mask], self.t_train[batch_mask]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = self.network.loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
            if self.evaluate_sample_num_per_epoch is not None:
                k = self.evaluate_sample_num_per_epoch
                x_tr, t_tr, x_te, t_te = x_tr[:k], t_tr[:k], x_te[:k], t_te[:k]
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
        self.current_iter += 1

    def train(self) -> None:
        """max_iter steps, then the final test accuracy on the whole test set."""
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
