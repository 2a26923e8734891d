"""Matrix products: matmul and its spellings (mm, bmm, dot, outer), and einsum on top of them.

Operands must share a dtype, as in PyTorch: a float32 weight times float64 input
raises and says how to convert, instead of silently promoting the layer.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional.shape import expand, permute, reshape
from tinygrad_bn.tensor import Tensor


def check_same_dtype(op: str, a: Tensor, b: Tensor) -> None:
    """matmul-like ops refuse operands of different dtypes (PyTorch's rule)."""
    if a._data.dtype != b._data.dtype:
        raise TypeError(
            f"{op}: operands have dtypes {a.dtype} and {b.dtype}; they must match. Convert one "
            "(x.float() / x.double(), or model.float() / model.double() for a Module's parameters)"
        )


def matmul(input: Tensor, other: Any) -> Tensor:
    """numpy's matmul: 1-D operands are promoted to matrices, batch dims broadcast."""
    other = input._operand(other)
    check_same_dtype("matmul", input, other)
    return ops.MatMul.apply(input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """(n, m) @ (m, p), 2-D only."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expects two matrices, got shapes {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """(b, n, m) @ (b, m, p), the batch sizes equal."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: expects (b, n, m) and (b, m, p), got shapes {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of one length."""
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise ValueError(f"dot: expects two 1-D tensors of one length, got shapes {input.shape} "
                         f"and {other.shape}")
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """a[i] * b[j] for 1-D a and b."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise ValueError(f"outer: expects two 1-D tensors, got shapes {input.shape} and {vec2.shape}")
    check_same_dtype("outer", input, vec2)
    return reshape(input, (-1, 1)) * reshape(vec2, (1, -1))


# ---------------------------------------------------------------- einsum


@composite("einsum")
def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, e.g. einsum("bij,bjk->bik", a, b), composed from permute, reshape,
    sum and matmul (so its gradient is theirs). Supports '...', repeated letters in one
    operand (diagonals), and an implicit output (letters used once, in alphabetical order).
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    terms, output = _parse(equation, operands)
    work = [(_diagonal(t, letters), "".join(dict.fromkeys(letters))) for t, letters in zip(operands, terms)]
    result, letters = work[0]
    for k, (t, t_letters) in enumerate(work[1:], start=1):
        later = set(output).union(*[set(w[1]) for w in work[k + 1:]])
        result, letters = _contract(result, letters, t, t_letters, later)
    drop = tuple(i for i, c in enumerate(letters) if c not in output)
    if drop:
        result = ops.Sum.apply(result, axis=drop)
        letters = "".join(c for c in letters if c in output)
    return permute(result, *[letters.index(c) for c in output]) if letters != output else result


def _parse(equation: str, operands: Sequence[Any]) -> tuple[list[str], str]:
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operands, got {len(operands)}")
    spare = iter(c for c in string.ascii_uppercase if c not in equation)
    n_ellipsis = max((t.ndim - (len(term) - 3) for t, term in zip(operands, terms) if "..." in term),
                     default=0)
    ell = "".join(next(spare) for _ in range(n_ellipsis))
    out_terms = []
    for t, term in zip(operands, terms):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operands must be Tensors, got {type(t).__name__}")
        if "..." in term:
            k = t.ndim - (len(term) - 3)
            term = term.replace("...", ell[n_ellipsis - k:])
        if len(term) != t.ndim or not term.isalpha():
            raise ValueError(f"einsum: subscripts {term!r} do not fit an operand of shape {t.shape}")
        out_terms.append(term)
    if arrow:
        output = rhs.replace("...", ell)
    else:
        counts = {c: "".join(out_terms).count(c) for c in "".join(out_terms)}
        output = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    if any(c not in "".join(out_terms) for c in output):
        raise ValueError(f"einsum: output subscripts {output!r} use letters no operand has")
    return out_terms, output


def _diagonal(t: Tensor, letters: str) -> Tensor:
    """Collapse repeated letters of one operand to their diagonal (e.g. 'ii' -> 'i')."""
    while len(set(letters)) < len(letters):
        c = next(c for c in letters if letters.count(c) > 1)
        first, second = letters.index(c), letters.index(c, letters.index(c) + 1)
        n = t.shape[first]
        index = [slice(None)] * t.ndim
        index[first] = index[second] = np.arange(n)
        # numpy puts the advanced-indexed dim first when the two indices are not adjacent
        t = ops.GetItem.apply(t, index=tuple(index))
        rest = letters[:first] + letters[first + 1:second] + letters[second + 1:]
        letters = (c + rest) if second - first > 1 else letters[:second] + letters[second + 1:]
    return t


def _contract(a: Tensor, la: str, b: Tensor, lb: str, keep: set[str]) -> tuple[Tensor, str]:
    """a * b summed over their shared letters that nothing later needs, as one batched matmul."""
    # Letters only one side has and nothing later needs can be summed away first.
    a, la = _sum_away(a, la, set(lb) | keep)
    b, lb = _sum_away(b, lb, set(la) | keep)
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    size = {c: max(a.shape[la.index(c)] if c in la else 1, b.shape[lb.index(c)] if c in lb else 1)
            for c in la + lb}
    order_a, order_b = batch + left + summed, batch + summed + right
    a = expand(permute(a, *[la.index(c) for c in order_a]), [size[c] for c in order_a])
    b = expand(permute(b, *[lb.index(c) for c in order_b]), [size[c] for c in order_b])

    def n(cs: list[str]) -> int:
        return int(np.prod([size[c] for c in cs], dtype=np.int64))

    out = matmul(reshape(a, (n(batch), n(left), n(summed))), reshape(b, (n(batch), n(summed), n(right))))
    return reshape(out, [size[c] for c in batch + left + right]), "".join(batch + left + right)


def _sum_away(t: Tensor, letters: str, needed: set[str]) -> tuple[Tensor, str]:
    drop = tuple(i for i, c in enumerate(letters) if c not in needed)
    if not drop:
        return t, letters
    return ops.Sum.apply(t, axis=drop), "".join(c for c in letters if c in needed)
