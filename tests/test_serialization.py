"""tinygrad_bn.save / load: round trips of tensors and containers, and nothing is ever unpickled."""

import pickle
import zipfile

import numpy as np
import pytest

import tinygrad_bn as tg


def test_a_nested_state_round_trips_with_its_types(tmp_path):
    model = tg.nn.Sequential(tg.nn.Linear(3, 4, rng=0), tg.nn.BatchNorm1d(4))
    state = {"model": model.state_dict(), "epoch": 3, "lr": 0.1, "name": "run", "none": None,
             "pair": (1, 2.5), "list": [tg.tensor([1.0, 2.0], requires_grad=True), np.arange(3)]}
    path = tmp_path / "ck.npz"
    tg.save(state, path)
    back = tg.load(path)
    assert back["epoch"] == 3 and back["lr"] == 0.1 and back["name"] == "run" and back["none"] is None
    assert back["pair"] == (1, 2.5) and isinstance(back["pair"], tuple)
    t, a = back["list"]
    assert isinstance(t, tg.Tensor) and t.requires_grad and isinstance(a, np.ndarray)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(back["model"][key]), np.asarray(value))
    fresh = tg.nn.Sequential(tg.nn.Linear(3, 4, rng=1), tg.nn.BatchNorm1d(4))
    fresh.load_state_dict(back["model"])
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)


def test_the_file_holds_no_pickle_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    tg.save({"a": tg.ones(2)}, path)
    with zipfile.ZipFile(path) as z:
        assert all(not name.endswith(".pkl") for name in z.namelist())
    np.savez(tmp_path / "foreign.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="was not written by tinygrad_bn.save"):
        tg.load(tmp_path / "foreign.npz")
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="is not a valid .npz archive"):
        tg.load(tmp_path / "pickled.npz")
    with pytest.raises(TypeError, match=r"save: obj\['m'\] is a Linear; expected Tensors"):
        tg.save({"m": tg.nn.Linear(2, 2)}, tmp_path / "bad.npz")


def test_a_save_killed_mid_write_leaves_no_temp_file_after_the_next_save(tmp_path):
    path = tmp_path / "ck.npz"
    # What a writer killed with -9 leaves behind: a temp file named after a pid that is gone.
    stale = tmp_path / f".{path.name}.999999999.deadbeef.tmp"
    stale.write_bytes(b"half a file")
    tg.save({"a": tg.ones(1)}, path)
    assert not stale.exists() and path.exists()
