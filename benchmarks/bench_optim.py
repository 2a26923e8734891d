"""Optimizer step time: tinygrad_bn.optim vs the same update as plain numpy.

Parameters of a 784-100x5-10 MLP (6 Linear layers, 12 arrays, 129,910 floats),
float32, with random gradients. Prints microseconds per step (median of repeats).
"""
import math
import timeit

import numpy as np

from tinygrad_bn import Tensor, nn, optim

rng = np.random.default_rng(0)
sizes = [784] + [100] * 5 + [10]
layers = [nn.Linear(a, b, rng=rng) for a, b in zip(sizes[:-1], sizes[1:])]
model = nn.Sequential(*layers)
params = model.parameters()
for p in params:
    p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
W = [p.data.copy() for p in params]
G = [p.grad.data for p in params]
print(f"{len(params)} parameter arrays, {sum(p.data.size for p in params):,} floats, float32")


def naive_sgd(lr=1e-3):
    for w, g in zip(W, G):
        w -= lr * g


VELOCITY = [np.zeros_like(w) for w in W]


def naive_momentum(state=VELOCITY, lr=1e-3, mu=0.9):
    # CS231n sgd_momentum: v = mu*v - lr*dw; w += v
    for i, (w, g) in enumerate(zip(W, G)):
        state[i] = mu * state[i] - lr * g
        w += state[i]


adam_m = [np.zeros_like(w) for w in W]
adam_v = [np.zeros_like(w) for w in W]
adam_t = [0]


def naive_adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    # CS231n / textbook adam, written the obvious way
    adam_t[0] += 1
    t = adam_t[0]
    for i, (w, g) in enumerate(zip(W, G)):
        adam_m[i] = b1 * adam_m[i] + (1 - b1) * g
        adam_v[i] = b2 * adam_v[i] + (1 - b2) * (g * g)
        mt = adam_m[i] / (1 - b1**t)
        vt = adam_v[i] / (1 - b2**t)
        w -= lr * mt / (np.sqrt(vt) + eps)


def naive_adam_inplace(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    # a careful hand-written version: in-place ops, corrections folded into scalars
    adam_t[0] += 1
    t = adam_t[0]
    for m, v, w, g in zip(adam_m, adam_v, W, G):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        w -= (lr / (1 - b1**t)) * m / (np.sqrt(v) / math.sqrt(1 - b2**t) + eps)


def bench(fn, number=200, repeat=7):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


rows = [
    ("SGD", optim.SGD(params, lr=1e-3).step, naive_sgd),
    ("SGD momentum=0.9", optim.SGD(params, lr=1e-3, momentum=0.9).step, naive_momentum),
    ("Adam", optim.Adam(params, lr=1e-3).step, naive_adam),
    ("Adam vs careful numpy", optim.Adam(params, lr=1e-3).step, naive_adam_inplace),
]
print(f"{'update':24} {'tinygrad_bn us':>15} {'numpy us':>10} {'ratio':>7}")
for name, ours, ref in rows:
    a, b = bench(ours), bench(ref)
    print(f"{name:24} {a:15.1f} {b:10.1f} {a / b:7.2f}")
