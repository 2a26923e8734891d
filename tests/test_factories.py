"""Factories (zeros, arange, randn, ...) and the default generator: PyTorch's names, shapes, dtypes."""

import numpy as np
import pytest

import tinygrad_bn as tg


def test_shapes_given_as_ints_or_one_sequence_and_the_default_float_dtype():
    for make in (tg.zeros, tg.ones, tg.empty, tg.rand, tg.randn):
        assert make(2, 3).shape == make((2, 3)).shape == make([2, 3]).shape == (2, 3)
        assert make(2).dtype == np.float32 and make(2, dtype=np.float64).dtype == np.float64
    assert tg.zeros(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(tg.full((2,), 7).data, [7, 7])
    assert tg.full((2,), 7).dtype == np.int64 and tg.full((2,), 7.0).dtype == np.float32


def test_arange_linspace_eye_follow_pytorch():
    assert tg.arange(5).dtype == np.int64 and tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75] and tg.arange(0.0, 1).dtype == np.float32
    assert tg.arange(0, 1, 0.1).numel() == 10  # PyTorch's count: ceil((end - start) / step)
    np.testing.assert_allclose(tg.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(tg.eye(2, 3).data, np.eye(2, 3))
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        tg.arange(0, 1, 0)


def test_like_factories_take_shape_and_dtype_from_their_input():
    x = tg.randn(2, 3, dtype=np.float64)
    for like in (tg.zeros_like(x), tg.ones_like(x), tg.rand_like(x), tg.randn_like(x), tg.full_like(x, 2.0)):
        assert like.shape == (2, 3) and like.dtype == np.float64
    assert tg.randint_like(x, 5).dtype == x.dtype and tg.randint(0, 5, (3,)).dtype == np.int64


def test_manual_seed_makes_every_random_op_repeat_itself():
    def draw():
        return (tg.randn(3).numpy(), tg.rand(2).numpy(), tg.randint(10, (4,)).numpy(),
                tg.nn.Linear(3, 2).weight.numpy(), tg.randperm(5).numpy())

    tg.manual_seed(123)
    first = draw()
    tg.manual_seed(123)
    second = draw()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert tg.initial_seed() == 123
    tg.manual_seed(124)
    assert not np.array_equal(tg.randn(3).numpy(), first[0])


def test_a_generator_is_its_own_stream_and_restores_its_state():
    g = tg.Generator().manual_seed(7)
    state = g.get_state()
    a = tg.randn(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(tg.randn(4, generator=g).numpy(), a)
    np.testing.assert_array_equal(tg.randn(4, generator=tg.Generator(7)).numpy(), a)
    with pytest.raises(TypeError, match="randn: generator must be a tinygrad_bn.Generator"):
        tg.randn(2, generator="seven")


def test_normal_with_numbers_or_tensors_of_means_and_stds():
    tg.manual_seed(0)
    sample = tg.normal(2.0, 0.5, (20000,)).numpy()
    # 20,000 draws: the sample mean's std is 0.5 / sqrt(2e4) = 0.0035; 0.02 is > 5 sigma.
    assert abs(sample.mean() - 2.0) < 0.02 and abs(sample.std() - 0.5) < 0.02
    means = tg.tensor([0.0, 100.0], dtype=np.float64)
    out = tg.normal(means, 1e-9)
    assert out.dtype == np.float64 and np.allclose(out.numpy(), [0.0, 100.0])
    with pytest.raises(ValueError, match="normal: std must be non-negative"):
        tg.normal(0.0, -1.0, (2,))


def test_device_cpu_is_accepted_and_others_are_refused():
    assert tg.zeros(2, device="cpu").shape == (2,) and tg.tensor([1.0], device="cpu").to("cpu").shape == (1,)
    with pytest.raises(ValueError, match="zeros: device .cuda. is not available; tinygrad_bn computes on"):
        tg.zeros(2, device="cuda")
