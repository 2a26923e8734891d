"""A minimal reverse-mode engine: the yardstick for the per-op cost of bench_engine's chain.

Closures instead of Function classes, no contexts, no checks, no hooks, no
graph release, no dtype rules: the least Python a numpy autodiff engine can run
per op. What tinygrad_bn costs beyond it is the price of its guarantees
(checked gradients, released graphs, version checks, traces for the viewer).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MiniTensor:
    """An array, its gradient, its parents, and the closure that maps a gradient to theirs."""

    __slots__ = ("data", "grad", "parents", "back")

    def __init__(self, data: np.ndarray, parents: tuple = (), back: Any = None):
        self.data, self.grad, self.parents, self.back = data, None, parents, back

    def __mul__(self, other: float) -> MiniTensor:
        return MiniTensor(self.data * other, (self,), lambda g: (g * other,))

    def __add__(self, other: float) -> MiniTensor:
        return MiniTensor(self.data + other, (self,), lambda g: (g,))

    def sum(self) -> MiniTensor:
        shape = self.data.shape
        return MiniTensor(np.asarray(self.data.sum()), (self,), lambda g: (np.broadcast_to(g, shape),))

    def backward(self) -> None:
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # iterative post-order: the nodes in topological order
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node.parents)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            if node.back is not None and node.grad is not None:
                for parent, g in zip(node.parents, node.back(node.grad)):
                    parent.grad = g if parent.grad is None else parent.grad + g
