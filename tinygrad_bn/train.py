"""Trainer: minibatch training with evaluation, checkpoints and a best snapshot.

    model = nn.Sequential(nn.Linear(20, 64, rng=0), nn.BatchNorm1d(64), nn.ReLU(),
                          nn.Linear(64, 3, rng=1))
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3),
                      train=(x_train, y_train), val=(x_val, y_val),
                      batch_size=32, epochs=5, seed=0,
                      checkpoint_path="run.npz", best_path="best.npz")
    history = trainer.fit()          # history.loss, history.val_acc, ...
    # later, in a new process, with the same model/optimizer/data set-up:
    trainer.resume("run.npz"); trainer.fit()   # continues bit-identically

Minibatches come from `np.random.default_rng(seed)`: epoch k uses that
Generator's k-th `permutation(n)`. A checkpoint holds everything a run depends
on — parameters and buffers (e.g. BatchNorm running statistics), optimizer
state, the Generator's state (and that of any Generator a module keeps, such as
Dropout's), the position inside the current epoch, the counters, the history
and the best snapshot — so resuming gives the same numbers as never stopping.
Files are `.npz` written atomically and read back without pickle.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn._io import atomic_save_npz, load_npz_checked, remove_stale_temp_files
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.nn.module import Module
from tinygrad_bn.optim import Optimizer, load_state_from_arrays, state_to_arrays
from tinygrad_bn.tensor import Tensor

__all__ = [
    "CHECKPOINT_FORMAT", "SNAPSHOT_FORMAT", "Evaluation", "History", "Trainer", "load_snapshot",
]

# Stored in every file as its "format" entry: a foreign .npz, or one from another
# version of the layout, is refused by name instead of half-loaded.
CHECKPOINT_FORMAT = "tinygrad_bn.trainer-checkpoint/2"  # 2: optimizer state in torch.optim's layout
SNAPSHOT_FORMAT = "tinygrad_bn.model-snapshot/1"

LossFn = Callable[[Tensor, np.ndarray], Tensor]
PathLike = str | os.PathLike


# ---------------------------------------------------------------- history


@dataclass
class History:
    """What fit() recorded: a loss per iteration and one row per evaluation.

    `loss[i]` is the training loss of iteration i+1 (see `iterations`). Row j of
    the evaluation lists was taken after iteration `eval_iteration[j]`, which is
    `eval_epoch[j]` epochs in; accuracies and losses are nan where not measured
    (no validation set, or labels that are not class indices). With
    `Trainer(grad_norm_every=k)`, `grad_norms[name][j]` is the L2 norm of parameter
    `name`'s gradient in iteration `grad_norm_iteration[j]` (1, 1+k, 1+2k, ...).
    """

    loss: list[float] = field(default_factory=list)
    eval_iteration: list[int] = field(default_factory=list)
    eval_epoch: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    grad_norm_iteration: list[int] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)

    _EVAL_FIELDS = ("eval_iteration", "eval_epoch", "train_acc", "val_acc", "val_loss")
    _GRAD_PREFIX = "grad_norm/"  # array names: grad_norm/<parameter name>

    @property
    def iterations(self) -> np.ndarray:
        """Iteration numbers 1..len(loss), the x axis for `loss`."""
        return np.arange(1, len(self.loss) + 1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every list as a numpy array (int64 for iteration numbers, float64 otherwise)."""
        arrays = {"loss": np.asarray(self.loss, dtype=np.float64)}
        for name in self._EVAL_FIELDS:
            dtype = np.int64 if name == "eval_iteration" else np.float64
            arrays[name] = np.asarray(getattr(self, name), dtype=dtype)
        if self.grad_norm_iteration:
            arrays["grad_norm_iteration"] = np.asarray(self.grad_norm_iteration, dtype=np.int64)
            for name, norms in self.grad_norms.items():
                arrays[self._GRAD_PREFIX + name] = np.asarray(norms, dtype=np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str = "history") -> History:
        """Rebuild from `to_arrays()` output, checking names, ranks and lengths."""
        expected = {"loss", *cls._EVAL_FIELDS}
        grad_names = {k for k in arrays if k.startswith(cls._GRAD_PREFIX)}
        if grad_names or "grad_norm_iteration" in arrays:
            expected |= grad_names | {"grad_norm_iteration"}
        if set(arrays) != expected:
            raise ValueError(
                f"{source}: expected arrays {sorted(expected)}, got {sorted(arrays)}"
            )
        for name, a in arrays.items():
            if a.ndim != 1 or a.dtype.kind not in "iuf":
                raise ValueError(
                    f"{source}: {name} must be a 1-d numeric array, got {a.dtype} {a.shape}"
                )
        lengths = {len(arrays[name]) for name in cls._EVAL_FIELDS}
        if len(lengths) != 1:
            raise ValueError(
                f"{source}: evaluation arrays differ in length: "
                + ", ".join(f"{n}={len(arrays[n])}" for n in cls._EVAL_FIELDS)
            )
        steps = arrays.get("grad_norm_iteration", np.zeros(0, np.int64))
        if any(len(arrays[k]) != len(steps) for k in grad_names):
            raise ValueError(f"{source}: each grad_norm/ array must have one value per "
                             f"grad_norm_iteration ({len(steps)})")
        return cls(
            loss=[float(v) for v in arrays["loss"]],
            eval_iteration=[int(v) for v in arrays["eval_iteration"]],
            **{n: [float(v) for v in arrays[n]] for n in cls._EVAL_FIELDS if n != "eval_iteration"},
            grad_norm_iteration=[int(v) for v in steps],
            grad_norms={k[len(cls._GRAD_PREFIX):]: [float(v) for v in arrays[k]]
                        for k in sorted(grad_names)},
        )


class Evaluation(NamedTuple):
    """Accuracy (nan unless labels are class indices) and mean loss over a data set."""

    accuracy: float
    loss: float


# ---------------------------------------------------------------- argument checks


def _int_at_least(name: str, value: Any, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        extra = " or None" if allow_none else ""
        raise ValueError(f"Trainer: {name} must be an int >= {low}{extra}, got {value!r}")
    return int(value)


def _check_data(name: str, data: Any, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as arrays with one row per example; x converted to the model's dtype."""
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(
            f"Trainer: {name} must be a pair (x, y) of arrays, got {type(data).__name__}"
        )
    x, y = (np.asarray(a.data if isinstance(a, Tensor) else a) for a in data)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"Trainer: {name} must hold x and y with the same number (> 0) of examples along "
            f"axis 0, got x of shape {x.shape} and y of shape {y.shape}"
        )
    if x.dtype.kind not in "biuf":
        raise TypeError(f"Trainer: {name} x must be numeric, got dtype {x.dtype}")
    # Converted once here rather than per batch; a float64 batch would also silently
    # promote a float32 model's whole forward pass to float64.
    return x.astype(dtype, copy=False), y


def _module_generators(model: Module) -> Iterator[tuple[str, np.random.Generator]]:
    """(name, Generator) for every numpy Generator a module keeps as an attribute (e.g. Dropout)."""
    for mod_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                yield (f"{mod_name}.{attr}" if mod_name else attr), value


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar on a terminal, else None (no tqdm, progress=False, or stderr redirected)."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm  # optional dependency
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)


# ---------------------------------------------------------------- reading files


def _format_of(arrays: dict[str, np.ndarray]) -> str | None:
    """The file's "format" entry as a string, or None if it has none."""
    found = arrays.get("format")
    if isinstance(found, np.ndarray) and found.shape == () and found.dtype.kind == "U":
        return str(found.item())
    return None


def _read_checked(path: PathLike, formats: tuple[str, ...], what: str) -> tuple[dict, dict]:
    """Load an .npz, check its "format" entry is one of `formats`, and parse its JSON "meta"."""
    arrays = load_npz_checked(path)
    found = _format_of(arrays)
    if found not in formats:
        detail = f"its format entry is {found!r}" if found is not None else "it has no format entry"
        expected = " or ".join(repr(f) for f in formats)
        raise ValueError(f"{str(path)!r} is not a {what}: {detail}, expected {expected}")
    try:
        meta = json.loads(arrays["meta"].item())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{str(path)!r}: missing or unreadable 'meta' entry ({err})") from err
    return arrays, meta


def _section(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries under `prefix/`, with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def _check_model_state(
    path: PathLike, section: str, state: dict[str, np.ndarray], model: Module
) -> None:
    """Raise ValueError unless `state` has exactly the model's entries, shapes and dtype kinds."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{str(path)!r}: {section} does not match the model: missing entries {missing}, "
            f"unexpected entries {unexpected} (was it saved from a different architecture?)"
        )
    for name, value in state.items():
        target = own[name]
        if value.shape != target.shape:
            raise ValueError(
                f"{str(path)!r}: {section} entry {name!r} has shape {value.shape}, "
                f"the model's has shape {target.shape}"
            )
        if not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
            raise ValueError(
                f"{str(path)!r}: {section} entry {name!r} has dtype {value.dtype}, "
                f"the model's is {target.dtype}"
            )


def load_snapshot(model: Module, path: PathLike) -> dict:
    """Load the parameters and buffers of a best snapshot (or a checkpoint) into `model`.

    Returns the file's metadata (for a snapshot: val_acc and iteration).
    """
    arrays, meta = _read_checked(
        path, (SNAPSHOT_FORMAT, CHECKPOINT_FORMAT), "model snapshot or Trainer checkpoint"
    )
    state = _section(arrays, "model")
    _check_model_state(path, "model", state, model)
    model.load_state_dict(state)
    return meta


# ---------------------------------------------------------------- the trainer


def _check_optimizer_owns_model(model: Module, optimizer: Optimizer) -> None:
    """The optimizer must update the model's own parameters (not a copy's, not another model's)."""
    mine = {id(p) for p in model.parameters()}
    theirs = [p for group in optimizer.param_groups for p in group["params"]]
    foreign = sum(1 for p in theirs if id(p) not in mine)
    if foreign:
        raise ValueError(
            f"Trainer: {foreign} of the optimizer's {len(theirs)} parameters are not the model's "
            "(built for another model, or before a deepcopy?); build the optimizer from "
            "model.parameters()"
        )


def _check_no_single_row_batch(model: Module, n: int, batch_size: int, drop_last: bool) -> None:
    """BatchNorm1d in training cannot normalise one row: catch a last batch of one up front.

    (BatchNorm2d normalises over N*H*W values, so one image is fine there.)"""
    if drop_last or n % batch_size != 1:
        return
    norms = [name or type(m).__name__ for name, m in model.named_modules()
             if type(m).__name__ == "BatchNorm1d"]
    if norms:
        raise ValueError(
            f"Trainer: {n} examples in batches of {batch_size} leave a last batch of 1 row, which "
            f"BatchNorm ({', '.join(norms)}) cannot normalise in training; pass drop_last=True "
            "or another batch_size"
        )


class Trainer:
    """Minibatch training of `model` with `optimizer`, evaluations, checkpoints and a best snapshot.

    `train` and `val` are (x, y) pairs of arrays (x is converted once to the
    model's parameter dtype). `loss_fn(output, y_batch)` must return the batch's
    mean loss as a scalar Tensor. Evaluations run every `eval_every` iterations
    and/or at the end of each epoch (`eval_per_epoch`): training accuracy on a
    fixed random subset of `train_eval_size` training examples (all if None),
    validation accuracy and loss on all of `val`. When validation accuracy
    improves, the model's parameters and buffers are kept as the best snapshot
    (in memory, and at `best_path` if given). A checkpoint goes to
    `checkpoint_path` after every epoch and every `checkpoint_every` iterations.
    With `grad_norm_every=k`, the L2 norm of every parameter's gradient is recorded in
    iterations 1, 1+k, 1+2k, ... (`history.grad_norms`), to see gradients vanish or explode.
    """

    def __init__(
        self,
        model: Module,
        optimizer: Optimizer,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        loss_fn: LossFn = F.cross_entropy,
        batch_size: int = 32,
        epochs: int = 1,
        eval_every: int | None = None,
        eval_per_epoch: bool = True,
        train_eval_size: int | None = 1000,
        eval_batch_size: int = 1000,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        progress: bool = True,
        checkpoint_path: PathLike | None = None,
        checkpoint_every: int | None = None,
        best_path: PathLike | None = None,
        grad_norm_every: int | None = None,
    ):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                "Trainer: optimizer must be a tinygrad_bn.optim optimizer, "
                f"got {type(optimizer).__name__}"
            )
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.batch_size = _int_at_least("batch_size", batch_size, 1)
        self.epochs = _int_at_least("epochs", epochs, 1)
        self.eval_every = _int_at_least("eval_every", eval_every, 1, allow_none=True)
        self.train_eval_size = _int_at_least("train_eval_size", train_eval_size, 1, True)
        self.eval_batch_size = _int_at_least("eval_batch_size", eval_batch_size, 1)
        self.checkpoint_every = _int_at_least("checkpoint_every", checkpoint_every, 1, True)
        self.seed = _int_at_least("seed", seed, 0)
        self.grad_norm_every = _int_at_least("grad_norm_every", grad_norm_every, 1, True)
        self.eval_per_epoch, self.shuffle, self.drop_last = eval_per_epoch, shuffle, drop_last
        self.progress = progress
        self.checkpoint_path, self.best_path = checkpoint_path, best_path
        if checkpoint_every is not None and checkpoint_path is None:
            raise ValueError("Trainer: checkpoint_every needs a checkpoint_path to write to")

        params = model.parameters()
        _check_optimizer_owns_model(model, optimizer)
        dtype = params[0].dtype if params else np.dtype(np.float32)
        self.x_train, self.y_train = _check_data("train", train, dtype)
        self.x_val, self.y_val = (None, None) if val is None else _check_data("val", val, dtype)
        n = len(self.x_train)
        self.batches_per_epoch = n // self.batch_size if drop_last else -(-n // self.batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"Trainer: drop_last=True with {n} examples and batch_size={self.batch_size} "
                "leaves no batch at all"
            )
        _check_no_single_row_batch(model, n, self.batch_size, drop_last)

        self.rng = np.random.default_rng(self.seed)
        # The training-accuracy subset comes from its own stream, so choosing it does
        # not shift the minibatch order away from default_rng(seed).permutation(n).
        subset_rng = np.random.default_rng([self.seed, 1])
        size = n if self.train_eval_size is None else min(n, self.train_eval_size)
        self._train_eval_rows = np.sort(subset_rng.permutation(n)[:size])

        self.iteration = 0  # optimizer steps taken
        self.epoch = 0  # epochs completed
        self._order: np.ndarray | None = None  # this epoch's example order, None between epochs
        self._batch_in_epoch = 0
        self.history = History()
        self.best_val_acc: float | None = None
        self.best_iteration: int | None = None
        self.best_state: dict[str, np.ndarray] | None = None

    # ---------------------------------------------------------------- training

    def fit(self) -> History:
        """Train until `epochs` epochs are complete (continuing after a resume); return history."""
        self.model.train()
        bar = _progress_bar(self.epochs * self.batches_per_epoch, self.iteration, self.progress)
        try:
            while self.epoch < self.epochs:
                if self._order is None:
                    n = len(self.x_train)
                    self._order = self.rng.permutation(n) if self.shuffle else np.arange(n)
                    self._batch_in_epoch = 0
                start = self._batch_in_epoch * self.batch_size
                loss = self._train_step(self._order[start : start + self.batch_size])
                self.history.loss.append(loss)
                self.iteration += 1
                self._batch_in_epoch += 1
                epoch_done = self._batch_in_epoch == self.batches_per_epoch
                if epoch_done:
                    self.epoch += 1
                    self._order, self._batch_in_epoch = None, 0
                if bar is not None:
                    bar.update(1)
                    if self.iteration % 10 == 0:
                        bar.set_postfix(epoch=self.epoch, loss=f"{loss:.4f}", refresh=False)
                every = self.eval_every is not None and self.iteration % self.eval_every == 0
                if every or (epoch_done and self.eval_per_epoch):
                    self._evaluate_and_record(bar)
                if self.checkpoint_path is not None and (
                    epoch_done
                    or (self.checkpoint_every and self.iteration % self.checkpoint_every == 0)
                ):
                    self.save_checkpoint(self.checkpoint_path)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _train_step(self, rows: np.ndarray) -> float:
        """Forward, backward and one optimizer step on the examples `rows`; returns the loss."""
        out = self.model(Tensor(self.x_train[rows]))
        loss = self.loss_fn(out, self.y_train[rows])
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            got = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"Trainer: loss_fn must return a scalar Tensor, got {got}")
        if not loss.requires_grad:
            raise RuntimeError(
                "Trainer: the loss does not depend on any parameter that requires grad "
                "(was the model's output computed under no_grad or detached?)"
            )
        self.model.zero_grad()
        self.optimizer.zero_grad()
        value = float(loss.data)
        if not np.isfinite(value):
            raise FloatingPointError(
                f"Trainer: the loss is {value} at step {self.iteration + 1} (epoch {self.epoch + 1}); "
                "stopping before the optimizer applies it. Lower the learning rate, check the data "
                "for nan/inf, or find the op with tinygrad_bn.detect_anomaly()"
            )
        loss.backward()
        if self.grad_norm_every is not None and self.iteration % self.grad_norm_every == 0:
            self._record_grad_norms()
        self.optimizer.step()
        return value

    def _record_grad_norms(self) -> None:
        """Each parameter's gradient norm in this iteration (nan where it got none)."""
        h = self.history
        h.grad_norm_iteration.append(self.iteration + 1)
        for name, p in self.model.named_parameters():
            g = p.grad
            norm = math.nan if g is None else float(np.linalg.norm(g.data.astype(np.float64)))
            h.grad_norms.setdefault(name, []).append(norm)

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Evaluation:
        """Accuracy and mean loss over (x, y), in eval mode and without recording a graph.

        Each module's train/eval mode is restored afterwards.
        """
        x, y = _check_data("evaluate", (x, y), self.x_train.dtype)
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        classify = y.ndim == 1 and y.dtype.kind in "iu"
        correct, loss_sum = 0, 0.0
        try:
            with no_grad():
                for start in range(0, len(x), self.eval_batch_size):
                    stop = start + self.eval_batch_size
                    xb, yb = x[start:stop], y[start:stop]
                    out = self.model(Tensor(xb))
                    # loss_fn returns a batch mean; weighting by batch size averages over examples.
                    loss_sum += float(self.loss_fn(out, yb).data) * len(xb)
                    if classify:
                        correct += int(np.count_nonzero(np.argmax(out.data, axis=1) == yb))
        finally:
            for m, mode in modes:
                m.training = mode
        accuracy = correct / len(x) if classify else math.nan
        return Evaluation(accuracy, loss_sum / len(x))

    def _evaluate_and_record(self, bar: Any = None) -> None:
        rows = self._train_eval_rows
        train_acc = self.evaluate(self.x_train[rows], self.y_train[rows]).accuracy
        val_acc = val_loss = math.nan
        if self.x_val is not None:
            val_acc, val_loss = self.evaluate(self.x_val, self.y_val)
        h = self.history
        h.eval_iteration.append(self.iteration)
        h.eval_epoch.append(self.iteration / self.batches_per_epoch)
        h.train_acc.append(train_acc)
        h.val_acc.append(val_acc)
        h.val_loss.append(val_loss)
        if not math.isnan(val_acc) and (self.best_val_acc is None or val_acc > self.best_val_acc):
            self.best_val_acc, self.best_iteration = val_acc, self.iteration
            self.best_state = {k: v.numpy() for k, v in self.model.state_dict().items()}
            if self.best_path is not None:
                self.save_snapshot(self.best_path)
        if bar is not None:
            bar.set_postfix(
                epoch=self.epoch, train_acc=f"{train_acc:.3f}", val_acc=f"{val_acc:.3f}"
            )

    def restore_best(self) -> None:
        """Load the best snapshot's parameters and buffers back into the model."""
        if self.best_state is None:
            raise RuntimeError(
                "Trainer.restore_best: no best snapshot yet (it needs a validation set and "
                "at least one evaluation)"
            )
        self.model.load_state_dict(self.best_state)

    # ---------------------------------------------------------------- files

    def save_snapshot(self, path: PathLike) -> Path:
        """Write the best snapshot (parameters and buffers) to `path` atomically."""
        if self.best_state is None:
            raise RuntimeError("Trainer.save_snapshot: no best snapshot yet")
        meta = {"val_acc": self.best_val_acc, "iteration": self.best_iteration}
        arrays = {f"model/{k}": v for k, v in self.best_state.items()}
        return atomic_save_npz(
            path, format=np.array(SNAPSHOT_FORMAT), meta=np.array(json.dumps(meta)), **arrays
        )

    def save_checkpoint(self, path: PathLike) -> Path:
        """Write everything needed to continue this run bit-identically to `path`, atomically."""
        meta = {
            "iteration": self.iteration,
            "epoch": self.epoch,
            "batch_in_epoch": self._batch_in_epoch,
            "n_train": len(self.x_train),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "module_rngs": {n: g.bit_generator.state for n, g in _module_generators(self.model)},
            "best_val_acc": self.best_val_acc,
            "best_iteration": self.best_iteration,
        }
        arrays: dict[str, np.ndarray] = {
            "format": np.array(CHECKPOINT_FORMAT),
            "meta": np.array(json.dumps(meta)),
            "epoch_order": np.zeros(0, np.int64) if self._order is None else self._order,
        }
        arrays.update({f"model/{k}": v.numpy() for k, v in self.model.state_dict().items()})
        arrays.update({f"optim/{k}": v for k, v in state_to_arrays(self.optimizer).items()})
        arrays.update({f"history/{k}": v for k, v in self.history.to_arrays().items()})
        if self.best_state is not None:
            arrays.update({f"best/{k}": v for k, v in self.best_state.items()})
        return atomic_save_npz(path, **arrays)

    def resume(self, path: PathLike) -> None:
        """Continue the run saved at `path`: model, optimizer, RNGs, position, history, best.

        The Trainer must be set up like the one that saved it (same architecture,
        optimizer type, training-set size and batch size). Everything is checked
        before anything changes; a mismatch raises ValueError naming it.
        """
        where = str(path)
        remove_stale_temp_files(path)  # left by a save that was killed (kill -9) mid-write
        arrays, meta = _read_checked(path, (CHECKPOINT_FORMAT,), "Trainer checkpoint")
        known = ("format", "meta", "epoch_order")
        prefixes = ("model/", "optim/", "history/", "best/")
        stray = sorted(k for k in arrays if k not in known and not k.startswith(prefixes))
        if stray or "epoch_order" not in arrays:
            raise ValueError(f"{where!r}: unexpected entries {stray} or no 'epoch_order' entry")
        model_state = _section(arrays, "model")
        _check_model_state(path, "model", model_state, self.model)
        best_state = _section(arrays, "best") or None
        if best_state is not None:
            _check_model_state(path, "best", best_state, self.model)
        history = History.from_arrays(_section(arrays, "history"), f"{where!r} history")

        try:
            iteration, epoch, batch_in_epoch = (
                int(meta["iteration"]), int(meta["epoch"]), int(meta["batch_in_epoch"])
            )
            n_train, batch_size = int(meta["n_train"]), int(meta["batch_size"])
            rng_state, module_rngs = meta["rng"], meta["module_rngs"]
            best_val_acc, best_iteration = meta["best_val_acc"], meta["best_iteration"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where!r}: incomplete or malformed 'meta' entry ({err!r})") from err
        n = len(self.x_train)
        if (n_train, batch_size) != (n, self.batch_size):
            raise ValueError(
                f"{where!r} was saved with {n_train} training examples and "
                f"batch_size={batch_size}; this Trainer has {n} and batch_size={self.batch_size}, "
                "so the minibatch sequence could not continue"
            )
        if not 0 <= batch_in_epoch < self.batches_per_epoch:
            raise ValueError(
                f"{where!r}: batch_in_epoch={batch_in_epoch} is outside "
                f"[0, {self.batches_per_epoch})"
            )
        order = arrays["epoch_order"]
        mid_epoch = batch_in_epoch > 0
        if order.dtype.kind not in "iu" or order.shape != ((n,) if mid_epoch else (0,)):
            raise ValueError(
                f"{where!r}: epoch_order has dtype {order.dtype} and shape {order.shape}, expected "
                f"integers of shape {(n,) if mid_epoch else (0,)}"
            )
        if len(history.loss) != iteration:
            raise ValueError(
                f"{where!r}: history holds {len(history.loss)} losses but the checkpoint is at "
                f"iteration {iteration}"
            )
        generators = dict(_module_generators(self.model))
        if not isinstance(module_rngs, dict) or set(module_rngs) != set(generators):
            raise ValueError(
                f"{where!r}: saved random generators for modules {sorted(module_rngs)}, this "
                f"model has {sorted(generators)}"
            )
        for name, state in [("trainer", rng_state), *module_rngs.items()]:
            target = self.rng if name == "trainer" else generators[name]
            kind = state.get("bit_generator") if isinstance(state, dict) else None
            if kind != target.bit_generator.state["bit_generator"]:
                raise ValueError(
                    f"{where!r}: saved state of random generator {name!r} is for {kind!r}, "
                    f"expected {target.bit_generator.state['bit_generator']!r}"
                )

        # Every check passed. The optimizer validates its own state before changing
        # anything, so it goes first: if it refuses, the Trainer is still untouched.
        load_state_from_arrays(self.optimizer, _section(arrays, "optim"))
        self.model.load_state_dict(model_state)
        self.rng.bit_generator.state = rng_state
        for name, state in module_rngs.items():
            generators[name].bit_generator.state = state
        self.iteration, self.epoch, self._batch_in_epoch = iteration, epoch, batch_in_epoch
        self._order = order.astype(np.int64) if mid_epoch else None
        self.history = history
        self.best_state = best_state
        self.best_val_acc = None if best_val_acc is None else float(best_val_acc)
        self.best_iteration = None if best_iteration is None else int(best_iteration)
