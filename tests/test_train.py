"""Trainer: history bookkeeping, evaluation mode, checkpoints, resume, reproducibility.

The central claim: a run interrupted at any point and resumed from its last
checkpoint in a fresh Trainer (new model, new optimizer, as a new process would
build them) ends with bit-identical parameters, BatchNorm buffers, history and
best snapshot to the run that never stopped.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from tinygrad_bn import Tensor, is_grad_enabled, nn, optim
from tinygrad_bn import functional as F
from tinygrad_bn.train import CHECKPOINT_FORMAT, History, Trainer, load_snapshot

N_TRAIN, N_VAL, FEATURES, CLASSES = 160, 40, 20, 3
BATCH = 32  # 5 batches per epoch


def _data(seed: int = 0):
    """A small learnable 3-class problem: labels from a random linear map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_TRAIN + N_VAL, FEATURES))
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES)), axis=1)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def _model(kind: str = "mlp") -> nn.Module:
    rng = np.random.default_rng(1)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(FEATURES, 16, rng=rng), nn.ReLU(), nn.Linear(16, CLASSES, rng=rng)
        )
    if kind == "bn-dropout":
        return nn.Sequential(
            nn.Linear(FEATURES, 16, rng=rng), nn.BatchNorm1d(16), nn.ReLU(),
            nn.Dropout(0.3, rng=7), nn.Linear(16, CLASSES, rng=rng),
        )
    if kind in ("bn-fused", "bn-composed"):
        return nn.Sequential(
            nn.Linear(FEATURES, 16, rng=rng), nn.BatchNorm1d(16, impl=kind[3:]), nn.ReLU(),
            nn.Linear(16, CLASSES, rng=rng),
        )
    raise ValueError(kind)


OPTIMIZERS = {
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
}


def _trainer(kind="mlp", opt="adam", **kwargs) -> Trainer:
    model = _model(kind)
    train, val = _data()
    kwargs = {"batch_size": BATCH, "epochs": 2, **kwargs}
    return Trainer(model, OPTIMIZERS[opt](model.parameters()), train=train, val=val, **kwargs)


def _assert_same_run(a: Trainer, b: Trainer) -> None:
    """Bit-identical parameters, buffers, history and best snapshot."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    assert a.history == b.history
    assert (a.best_val_acc, a.best_iteration) == (b.best_val_acc, b.best_iteration)
    for k in sa:
        np.testing.assert_array_equal(a.best_state[k], b.best_state[k], err_msg=f"best {k}")
    assert (a.iteration, a.epoch) == (b.iteration, b.epoch)


# ---------------------------------------------------------------- history


@pytest.mark.parametrize(
    "eval_every, per_epoch, expected",
    [
        (None, True, [5, 10, 15]),
        (4, True, [4, 5, 8, 10, 12, 15]),  # an iteration that is both is evaluated once
        (5, True, [5, 10, 15]),
        (6, False, [6, 12]),
    ],
)
def test_history_has_a_loss_per_iteration_and_a_row_per_evaluation(eval_every, per_epoch, expected):
    trainer = _trainer(epochs=3, eval_every=eval_every, eval_per_epoch=per_epoch)
    history = trainer.fit()
    assert len(history.loss) == 15 and list(history.iterations) == list(range(1, 16))
    assert history.eval_iteration == expected
    assert history.eval_epoch == [it / 5 for it in expected]
    for column in (history.train_acc, history.val_acc, history.val_loss):
        assert len(column) == len(expected)
    assert all(0.0 <= a <= 1.0 for a in history.train_acc + history.val_acc)
    assert all(np.isfinite(history.loss))


def test_training_reduces_the_loss_and_beats_chance():
    history = _trainer(epochs=5).fit()
    assert np.mean(history.loss[-5:]) < np.mean(history.loss[:5])
    assert history.val_acc[-1] > 0.6  # chance is 1/3 on three balanced-ish classes


def test_without_validation_data_val_metrics_are_nan_and_there_is_no_best():
    model = _model()
    train, _ = _data()
    trainer = Trainer(model, optim.Adam(model.parameters()), train=train, batch_size=BATCH)
    history = trainer.fit()
    assert len(history.val_acc) == 1
    assert np.isnan(history.val_acc[0]) and np.isnan(history.val_loss[0])
    assert trainer.best_state is None
    with pytest.raises(RuntimeError, match="no best snapshot yet"):
        trainer.restore_best()


def test_history_round_trips_through_arrays():
    history = _trainer(eval_every=3).fit()
    assert History.from_arrays(history.to_arrays()) == history


# ---------------------------------------------------------------- evaluation


class _Probe(nn.Module):
    """Identity layer that records (training, grad enabled) at every call."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, is_grad_enabled()))
        return x


def test_evaluate_runs_in_eval_mode_without_a_graph_and_restores_each_modules_mode():
    trainer = _trainer("bn-fused")
    probe = _Probe()
    trainer.model = nn.Sequential(probe, trainer.model)
    bn = trainer.model[1][1]
    trainer.model.train()
    trainer.model[1][3].eval()  # a module the user froze in eval mode stays so
    modes = [m.training for m in trainer.model.modules()]
    assert modes.count(False) == 1
    running_mean = bn.running_mean.data.copy()
    trainer.evaluate(*_data()[1])
    assert probe.calls and all(call == (False, False) for call in probe.calls)
    assert [m.training for m in trainer.model.modules()] == modes
    np.testing.assert_array_equal(bn.running_mean.data, running_mean)


def test_evaluate_counts_correct_predictions():
    trainer = _trainer()
    x, y = _data()[1]
    predicted = np.argmax(trainer.model(Tensor(x.astype(np.float32))).data, axis=1)
    result = trainer.evaluate(x, y)
    assert result.accuracy == np.mean(predicted == y)
    assert result.loss > 0


def test_fit_trains_in_training_mode_after_evaluations():
    trainer = _trainer(eval_every=2)
    probe = _Probe()
    trainer.model = nn.Sequential(probe, trainer.model)
    trainer.fit()
    training_calls = [c for c in probe.calls if c[1]]  # grad enabled: a training step
    assert len(training_calls) == 10 and all(training for training, _ in training_calls)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_gives_an_identical_run():
    a, b = _trainer("bn-dropout", seed=3), _trainer("bn-dropout", seed=3)
    a.fit()
    b.fit()
    _assert_same_run(a, b)


def test_different_seeds_give_different_minibatch_orders():
    a, b = _trainer(seed=3), _trainer(seed=4)
    assert a.fit().loss != b.fit().loss


class _RowRecorder(nn.Module):
    """Records column 0 of each training batch (which holds the example's row index)."""

    def __init__(self):
        super().__init__()
        self.rows: list[np.ndarray] = []

    def forward(self, x):
        if self.training:
            self.rows.append(x.data[:, 0].astype(int))
        return x


def test_minibatches_follow_default_rng_seed_permutations():
    train, _ = _data()
    x = train[0].copy()
    x[:, 0] = np.arange(N_TRAIN)  # float32 holds these integers exactly
    recorder = _RowRecorder()
    model = nn.Sequential(recorder, _model())
    Trainer(model, optim.SGD(model.parameters(), lr=0.01), train=(x, train[1]),
            batch_size=BATCH, epochs=2, seed=11).fit()
    rng = np.random.default_rng(11)
    expected = np.concatenate([rng.permutation(N_TRAIN), rng.permutation(N_TRAIN)])
    np.testing.assert_array_equal(np.concatenate(recorder.rows), expected)


# ---------------------------------------------------------------- checkpoints and resume


@pytest.mark.parametrize("kind", ["mlp", "bn-fused", "bn-composed", "bn-dropout"])
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_resume_after_an_epoch_is_bit_identical_to_an_uninterrupted_run(kind, opt, tmp_path):
    straight = _trainer(kind, opt, epochs=2, eval_every=3)
    straight.fit()

    first = _trainer(kind, opt, epochs=1, eval_every=3, checkpoint_path=tmp_path / "run.npz")
    first.fit()
    second = _trainer(kind, opt, epochs=2, eval_every=3)  # a fresh model and optimizer
    second.resume(tmp_path / "run.npz")
    assert (second.iteration, second.epoch) == (5, 1)
    second.fit()
    _assert_same_run(straight, second)


class _Crash(Exception):
    pass


def _crashing_loss(after: int):
    """cross_entropy that raises on training call number `after` + 1 (a simulated crash)."""
    calls = [0]

    def loss_fn(out, y):
        if is_grad_enabled():
            calls[0] += 1
            if calls[0] > after:
                raise _Crash
        return F.cross_entropy(out, y)

    return loss_fn


def test_resume_after_a_crash_mid_epoch_is_bit_identical(tmp_path):
    path = tmp_path / "run.npz"
    straight = _trainer("bn-dropout", epochs=3)
    straight.fit()

    crashed = _trainer("bn-dropout", epochs=3, checkpoint_path=path, checkpoint_every=3,
                       loss_fn=_crashing_loss(after=8))
    with pytest.raises(_Crash):
        crashed.fit()
    resumed = _trainer("bn-dropout", epochs=3)
    resumed.resume(path)
    assert (resumed.iteration, resumed.epoch) == (6, 1)  # the checkpoint at iteration 6
    resumed.fit()
    _assert_same_run(straight, resumed)


def test_checkpoint_and_best_snapshot_hold_batchnorm_buffers(tmp_path):
    trainer = _trainer("bn-fused", epochs=3, checkpoint_path=tmp_path / "run.npz",
                       best_path=tmp_path / "best.npz")
    trainer.fit()
    bn = trainer.model[1]
    assert bn.num_batches_tracked.data == 15 and not np.all(bn.running_mean.data == 0)

    saved = np.load(tmp_path / "run.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["model/1.running_mean"], bn.running_mean.data)
    np.testing.assert_array_equal(saved["model/1.running_var"], bn.running_var.data)
    assert saved["model/1.num_batches_tracked"] == 15

    best = np.load(tmp_path / "best.npz", allow_pickle=False)
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(best[f"model/{name}"], trainer.best_state[name])
        np.testing.assert_array_equal(saved[f"best/{name}"], trainer.best_state[name])
    assert best["model/1.num_batches_tracked"] == trainer.best_iteration  # one update per step

    fresh = _model("bn-fused")
    meta = load_snapshot(fresh, tmp_path / "best.npz")
    assert meta["val_acc"] == trainer.best_val_acc
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, trainer.best_state[name])


def test_restore_best_loads_the_best_parameters_and_buffers():
    trainer = _trainer("bn-fused", epochs=3, eval_every=2)
    trainer.fit()
    trainer.restore_best()
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, trainer.best_state[name])
    assert trainer.evaluate(*_data()[1]).accuracy == trainer.best_val_acc


def test_checkpoint_files_load_without_pickle(tmp_path):
    _trainer("bn-dropout", checkpoint_path=tmp_path / "run.npz").fit()
    with np.load(tmp_path / "run.npz", allow_pickle=False) as saved:
        assert saved["format"] == CHECKPOINT_FORMAT
        for key in saved.files:
            assert not saved[key].dtype.hasobject, key


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "run.npz"
    _trainer(checkpoint_path=path).fit()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a valid .npz archive"):
        _trainer().resume(path)


def test_foreign_npz_gives_a_clear_error(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W1=np.ones((3, 3)))
    with pytest.raises(ValueError, match="is not a Trainer checkpoint: it has no format entry"):
        _trainer().resume(path)


def test_best_snapshot_is_not_accepted_as_a_checkpoint(tmp_path):
    _trainer(best_path=tmp_path / "best.npz").fit()
    with pytest.raises(ValueError, match="format entry is 'tinygrad_bn.model-snapshot/1'"):
        _trainer().resume(tmp_path / "best.npz")


def test_checkpoint_with_a_pickled_member_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    _trainer(checkpoint_path=path).fit()
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="not a valid .npz archive"):
        _trainer().resume(path)


def test_checkpoint_from_another_architecture_names_the_mismatch(tmp_path):
    path = tmp_path / "run.npz"
    _trainer(checkpoint_path=path).fit()
    model = nn.Sequential(nn.Linear(FEATURES, 8, rng=0), nn.ReLU(), nn.Linear(8, CLASSES, rng=0))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    train, val = _data()
    other = Trainer(model, optim.Adam(model.parameters(), lr=1e-2), train=train, val=val,
                    batch_size=BATCH)
    message = r"entry '0.weight' has shape \(16, 20\), the model's has shape \(8, 20\)"
    with pytest.raises(ValueError, match=message):
        other.resume(path)
    for k, v in model.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(v, before[k])
    assert other.iteration == 0


def test_checkpoint_without_batchnorm_buffers_is_refused_by_a_batchnorm_model(tmp_path):
    path = tmp_path / "run.npz"
    _trainer("mlp", checkpoint_path=path).fit()
    with pytest.raises(ValueError, match="missing entries"):
        _trainer("bn-fused").resume(path)


def test_checkpoint_for_another_optimizer_is_refused_and_nothing_changes(tmp_path):
    path = tmp_path / "run.npz"
    _trainer(opt="adam", checkpoint_path=path).fit()
    trainer = _trainer(opt="sgd")
    before = {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(ValueError, match="state is for optimizer 'Adam', not 'SGD'"):
        trainer.resume(path)
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_checkpoint_for_another_batch_size_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    _trainer(checkpoint_path=path).fit()
    with pytest.raises(ValueError, match="batch_size=32; this Trainer has 160 and batch_size=16"):
        _trainer(batch_size=16).resume(path)


def test_missing_checkpoint_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .npz file"):
        _trainer().resume(tmp_path / "nope.npz")


# ---------------------------------------------------------------- progress bar


def test_progress_bar_is_quiet_when_stderr_is_not_a_terminal(capsys):
    _trainer(progress=True).fit()
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_unless_disabled(monkeypatch):
    pytest.importorskip("tqdm")
    for progress, expect_output in [(True, True), (False, False)]:
        terminal = _Terminal()
        monkeypatch.setattr("sys.stderr", terminal)
        _trainer(progress=progress).fit()
        assert ("10/10" in terminal.getvalue()) == expect_output


def test_trainer_works_without_tqdm_installed(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)  # import tqdm -> ImportError
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert len(_trainer().fit().loss) == 10


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
        ({"epochs": 1.5}, ValueError, "epochs must be an int >= 1, got 1.5"),
        ({"eval_every": 0}, ValueError, "eval_every must be an int >= 1 or None"),
        ({"checkpoint_every": 2}, ValueError, "checkpoint_every needs a checkpoint_path"),
        ({"batch_size": 500, "drop_last": True}, ValueError, "leaves no batch at all"),
        ({"loss_fn": "cross_entropy"}, TypeError, "loss_fn must be callable"),
    ],
)
def test_bad_trainer_arguments_raise_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        _trainer(**kwargs)


def test_mismatched_data_raises_naming_the_shapes():
    model = _model()
    x, y = _data()[0]
    with pytest.raises(ValueError, match=r"x of shape \(160, 20\) and y of shape \(150,\)"):
        Trainer(model, optim.Adam(model.parameters()), train=(x, y[:150]))


def test_non_model_or_non_optimizer_raises():
    model = _model()
    with pytest.raises(TypeError, match="optimizer must be a tinygrad_bn.optim optimizer"):
        Trainer(model, "adam", train=_data()[0])
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        Trainer(lambda x: x, optim.Adam(model.parameters()), train=_data()[0])


def test_loss_fn_returning_a_vector_raises():
    trainer = _trainer(loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none"))
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar Tensor, got shape \(32,\)"):
        trainer.fit()


# ---------------------------------------------------------------- refusing bad set-ups early


def _tiny_data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


def test_an_optimizer_over_another_models_parameters_is_refused():
    from tinygrad_bn import nn, optim

    model, other = nn.Linear(4, 3, rng=0), nn.Linear(4, 3, rng=1)
    with pytest.raises(ValueError, match="2 of the optimizer's 2 parameters are not the model's"):
        Trainer(model, optim.SGD(other.parameters(), lr=0.1), _tiny_data(), progress=False)


def test_a_non_finite_loss_stops_training_naming_the_step():
    from tinygrad_bn import nn, optim

    model = nn.Linear(4, 3, rng=0)
    x, y = _tiny_data()
    x[7] = np.nan  # reaches the loss in the second batch of 5
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=5, shuffle=False,
                      progress=False)
    before = model.weight.data.copy()
    with pytest.raises(FloatingPointError, match=r"the loss is nan at step 2 \(epoch 1\).*detect_anomaly"):
        trainer.fit()
    assert trainer.iteration == 1 and np.all(np.isfinite(model.weight.data))
    assert not np.array_equal(before, model.weight.data)  # the first, finite step was taken


def test_a_last_batch_of_one_row_with_batchnorm1d_is_caught_before_the_first_step():
    from tinygrad_bn import nn, optim

    model = nn.Sequential(nn.Linear(4, 5, rng=0), nn.BatchNorm1d(5), nn.Linear(5, 3, rng=1))
    with pytest.raises(ValueError, match=r"last batch of 1 row.*BatchNorm \(1\).*drop_last=True"):
        Trainer(model, optim.SGD(model.parameters(), lr=0.1), _tiny_data(11), batch_size=5, progress=False)
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), _tiny_data(11), batch_size=5, drop_last=True,
            progress=False)  # accepted


def test_resume_removes_temp_files_a_killed_save_left_behind(tmp_path):
    from tinygrad_bn import nn, optim

    model = nn.Linear(4, 3, rng=0)
    path = tmp_path / "ck.npz"
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), _tiny_data(), progress=False,
                      checkpoint_path=path)
    trainer.fit()
    stale = tmp_path / f".{path.name}.999999999.0badc0de.tmp"  # a writer killed with -9
    stale.write_bytes(b"partial")
    fresh = Trainer(model, optim.SGD(model.parameters(), lr=0.1), _tiny_data(), progress=False)
    fresh.resume(path)
    assert not stale.exists()
