"""Optimizer step time: tinygrad_bn.optim vs torch.optim vs hand-written numpy vs the memory floor.

    python benchmarks/bench_optim.py [--repeat N] [--no-torch]

The parameters of a 784-100x5-10 MLP (6 Linear layers, 12 arrays, 119,910
float32 values) with fixed random gradients. Each row times one `step()`:
best and median of `repeat` rounds, each round long enough to last ~0.05 s.
torch (if installed) runs one thread, on its default CPU path (a loop over the
tensors); its rounds are timed apart from numpy's, never interleaved. The
floor is the bytes a step must read and write (parameters, gradients, state)
at the speed np.copyto moves these same arrays: no loop over them can beat it.
Ratios are ours / theirs: below 1 means we are faster.
"""

from __future__ import annotations

import argparse
import math
import statistics
import timeit
from collections.abc import Callable

import numpy as np

from tinygrad_bn import Tensor, nn, optim

SIZES = [784] + [100] * 5 + [10]
# name -> (make ours or torch's optimizer from (module, params), arrays a step reads + writes per value)
OPTIMIZERS: dict[str, tuple[Callable, int]] = {
    "SGD": (lambda m, ps: m.SGD(ps, lr=1e-3), 3),  # read p, g; write p
    "SGD momentum=0.9": (lambda m, ps: m.SGD(ps, lr=1e-3, momentum=0.9), 5),  # + read, write b
    "SGD nesterov": (lambda m, ps: m.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True), 5),
    "Adam": (lambda m, ps: m.Adam(ps, lr=1e-3), 7),  # read p, g, m, v; write p, m, v
    "AdamW": (lambda m, ps: m.AdamW(ps, lr=1e-3), 7),
    "RMSprop": (lambda m, ps: m.RMSprop(ps, lr=1e-3), 5),
    "Adagrad": (lambda m, ps: m.Adagrad(ps, lr=1e-3), 5),
}


def timing(fn: Callable[[], object], repeat: int, min_time: float = 0.05) -> tuple[float, float]:
    """(best, median) microseconds per call of fn over `repeat` rounds."""
    fn()
    number = max(1, int(min_time / max(timeit.timeit(fn, number=3) / 3, 1e-9)))
    rounds = [t / number * 1e6 for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return min(rounds), statistics.median(rounds)


# ---------------------------------------------------------------- hand-written numpy


def numpy_references(weights: list[np.ndarray], grads: list[np.ndarray]) -> dict[str, Callable]:
    """The updates as people write them in numpy (CS231n style), for the rows that have one."""
    velocity = [np.zeros_like(w) for w in weights]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    t = [0]

    def sgd(lr=1e-3):
        for w, g in zip(weights, grads):
            w -= lr * g

    def momentum(lr=1e-3, mu=0.9):  # CS231n sgd_momentum: v = mu v - lr dw; w += v
        for i, (w, g) in enumerate(zip(weights, grads)):
            velocity[i] = mu * velocity[i] - lr * g
            w += velocity[i]

    def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):  # the textbook update, written the obvious way
        t[0] += 1
        for i, (w, g) in enumerate(zip(weights, grads)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * (g * g)
            w -= lr * (m[i] / (1 - b1 ** t[0])) / (np.sqrt(v[i] / (1 - b2 ** t[0])) + eps)

    def adam_in_place(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):  # careful: in-place, corrections folded
        t[0] += 1
        for mi, vi, w, g in zip(m, v, weights, grads):
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * (g * g)
            w -= (lr / (1 - b1 ** t[0])) * mi / (np.sqrt(vi) / math.sqrt(1 - b2 ** t[0]) + eps)

    return {"SGD": sgd, "SGD momentum=0.9": momentum, "Adam": adam, "Adam (careful numpy)": adam_in_place}


def floor_us_per_array_pass(weights: list[np.ndarray], repeat: int) -> float:
    """Microseconds to stream every array once (half of an np.copyto, which reads one and writes one)."""
    copies = [np.empty_like(w) for w in weights]

    def copy_all():
        for dst, src in zip(copies, weights):
            np.copyto(dst, src)

    return timing(copy_all, repeat)[0] / 2


def torch_timings(init: list[np.ndarray], grads: list[np.ndarray], repeat: int) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    params = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    out = {}
    for name, (make, _) in OPTIMIZERS.items():
        opt = make(torch.optim, params)
        out[name] = timing(opt.step, repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds per row (default 9)")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch.optim column")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = nn.Sequential(*[nn.Linear(a, b, rng=rng) for a, b in zip(SIZES[:-1], SIZES[1:])])
    params = model.parameters()
    for p in params:
        p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
    init = [p.data.copy() for p in params]
    grads = [p.grad.data for p in params]
    print(f"{len(params)} parameter arrays, {sum(p.data.size for p in params):,} float32 values\n")

    ours = {name: timing(make(optim, params).step, args.repeat) for name, (make, _) in OPTIMIZERS.items()}
    references = numpy_references([w.copy() for w in init], grads)
    numpy_times = {name: timing(fn, args.repeat) for name, fn in references.items()}
    one_pass = floor_us_per_array_pass(init, args.repeat)
    torch_times = None if args.no_torch else torch_timings(init, grads, args.repeat)

    header = (f"{'update':22} {'ours best':>9} {'ours med':>9} {'torch best':>10} {'numpy best':>10} "
              f"{'floor':>7} {'/torch':>7} {'/numpy':>7} {'/floor':>7}")
    print(header)
    print("-" * len(header))
    for name in [*OPTIMIZERS, "Adam (careful numpy)"]:
        best, median = ours[name.split(" (")[0]]
        floor = one_pass * OPTIMIZERS[name.split(" (")[0]][1]
        theirs = torch_times[name][0] if torch_times and name in torch_times else None
        reference = numpy_times[name][0] if name in numpy_times else None
        cells = [f"{best:9.1f}", f"{median:9.1f}",
                 f"{theirs:10.1f}" if theirs else f"{'-':>10}",
                 f"{reference:10.1f}" if reference else f"{'-':>10}",
                 f"{floor:7.1f}", f"{best / theirs:7.2f}" if theirs else f"{'-':>7}",
                 f"{best / reference:7.2f}" if reference else f"{'-':>7}", f"{best / floor:7.2f}"]
        print(f"{name:22} " + " ".join(cells))
    print("\nmicroseconds per step; the floor is one pass over the arrays "
          f"({one_pass:.1f} us) times the arrays each update reads and writes")


if __name__ == "__main__":
    main()
