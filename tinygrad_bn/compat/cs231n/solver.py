"""CS231n's Solver: minibatch training of a model with a `loss(X, y=None)` and a `params` dict.

Replaces ``from cs231n.solver import Solver``. Minibatches are drawn with
``np.random.choice`` (with replacement, as the course does), accuracy
subsamples likewise, and the progress lines are the course's:

    (Iteration 1 / 200) loss: 2.302585
    (Epoch 0 / 10) train acc: 0.100000; val_acc: 0.100000

Checkpoints are ``<checkpoint_name>_epoch_<n>.npz`` archives (parameters and
histories, written atomically) instead of the course's pickles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_bn._io import atomic_save_npz
from tinygrad_bn.compat.cs231n.optim import UPDATE_RULES

__all__ = ["np", "Solver"]

DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


class Solver:
    """Trains `model` on `data` (a dict with X_train, y_train, X_val, y_val) with an update rule.

    update_rule is 'sgd', 'sgd_momentum', 'rmsprop' or 'adam' (or a function
    `(w, dw, config) -> (next_w, config)`); optim_config is copied per parameter;
    the learning rate is multiplied by lr_decay after every epoch. After train(),
    ``model.params`` holds the parameters with the best validation accuracy.
    """

    def __init__(
        self,
        model: Any,
        data: dict[str, np.ndarray],
        update_rule: str | Callable[..., Any] = "sgd",
        optim_config: dict[str, Any] | None = None,
        lr_decay: float = 1.0,
        batch_size: int = 100,
        num_epochs: int = 10,
        num_train_samples: int | None = 1000,
        num_val_samples: int | None = None,
        checkpoint_name: str | None = None,
        print_every: int = 10,
        verbose: bool = True,
    ):
        if not hasattr(model, "loss") or not isinstance(getattr(model, "params", None), dict):
            raise TypeError(
                f"Solver: model must have a loss(X, y=None) method and a params dict, got "
                f"{type(model).__name__}"
            )
        missing = [k for k in DATA_KEYS if k not in data]
        if missing:
            raise ValueError(f"Solver: data is missing {missing}; expected the keys {list(DATA_KEYS)}")
        for split in ("train", "val"):
            x, y = np.asarray(data[f"X_{split}"]), np.asarray(data[f"y_{split}"])
            if x.ndim < 1 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"Solver: X_{split} has shape {x.shape} but y_{split} has shape {y.shape}; "
                    f"expected one label per example"
                )
        if isinstance(update_rule, str):
            if update_rule not in UPDATE_RULES:
                raise ValueError(
                    f"Solver: invalid update_rule {update_rule!r}; expected one of {list(UPDATE_RULES)}"
                )
            rule = UPDATE_RULES[update_rule]
        elif callable(update_rule):
            rule = update_rule
        else:
            raise TypeError(f"Solver: update_rule must be a name or a function, got {update_rule!r}")
        for name, value in (("batch_size", batch_size), ("num_epochs", num_epochs),
                            ("print_every", print_every)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Solver: {name} must be a positive int, got {value!r}")

        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = rule
        self.optim_config = dict(optim_config or {})
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.checkpoint_name = checkpoint_name
        self.print_every = print_every
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        """Clear the histories and give every parameter its own copy of optim_config."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self) -> None:
        """One minibatch (drawn with replacement), one loss/gradient, one update per parameter."""
        batch_mask = np.random.choice(self.X_train.shape[0], self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        self.loss_history.append(loss)
        for p, w in self.model.params.items():
            if p not in grads:
                raise KeyError(f"Solver: the model's loss returned no gradient for parameter {p!r}")
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self) -> None:
        """Write parameters and histories to <checkpoint_name>_epoch_<epoch>.npz, atomically."""
        if self.checkpoint_name is None:
            return
        filename = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        if self.verbose:
            print(f'Saving checkpoint to "{filename}"')
        atomic_save_npz(
            filename,
            **{f"param_{k}": v for k, v in self.model.params.items()},
            epoch=np.array(self.epoch),
            lr_decay=np.array(self.lr_decay),
            batch_size=np.array(self.batch_size),
            loss_history=np.array(self.loss_history, dtype=np.float64),
            train_acc_history=np.array(self.train_acc_history, dtype=np.float64),
            val_acc_history=np.array(self.val_acc_history, dtype=np.float64),
        )

    def check_accuracy(
        self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 100
    ) -> float:
        """Fraction of (a random subsample of num_samples of) X classified as y, in test mode."""
        n = X.shape[0]
        if num_samples is not None and n > num_samples:
            mask = np.random.choice(n, num_samples)
            n, X, y = num_samples, X[mask], y[mask]
        predictions = [
            np.argmax(self.model.loss(X[start:start + batch_size]), axis=1)
            for start in range(0, n, batch_size)
        ]
        return float(np.mean(np.hstack(predictions) == y)) if predictions else 0.0

    def train(self) -> None:
        """Run num_epochs epochs, printing progress and keeping the best parameters."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
                val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()
                if self.verbose:
                    print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                          f"val_acc: {val_acc:f}")
                if val_acc > self.best_val_acc:
                    self.best_val_acc = val_acc
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        # The course swaps in best_params unconditionally, which empties params when
        # validation accuracy never rose above 0; keep the last ones in that case.
        if self.best_params:
            self.model.params = self.best_params
