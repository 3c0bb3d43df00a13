"""Every registered primitive op, checked against PyTorch in float64 and by central differences.

``SPECS`` has one row per op in ``chainrule.OPS``: a Hypothesis strategy for the inputs (shapes,
broadcast pairs, axes, parameters), one or more chainrule spellings of the op (``x.sum(0)``,
``cr.sum(x, dim=0)``, ...) and the same computation in PyTorch. Two table-driven tests run each
row: forward value and the gradient of every input against PyTorch, and ``chainrule.gradcheck``.
A registered op without a row fails the suite. The explicit tests below the table pin down the
cases the table's random draws might miss, and the documented choices at ties and kinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import (
    apart_pair,
    assert_close,
    away_from,
    check_against_torch,
    distinct,
    gradcheck_fn,
    graph_ops,
    nonzero,
    normal,
    op_settings,
    positive,
    seeds,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.ops.elementwise import SMALL as E_SMALL
from chainrule.ops.linalg import _TINY as L_TINY

Values = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


@dataclass(frozen=True)
class Case:
    """One drawn input: float64 arrays (each becomes a leaf that requires grad) and the op's other arguments."""

    arrays: tuple[np.ndarray, ...]
    params: dict[str, Any]
    seed: int  # of the random upstream gradient


@dataclass(frozen=True)
class OpSpec:
    """How to test one op: input cases, chainrule spellings (any is correct) and the PyTorch reference."""

    cases: st.SearchStrategy[Case]
    forms: tuple[Callable[..., cr.Tensor], ...]
    torch: Callable[..., torch.Tensor] | None
    gradcheck_forms: tuple[Callable[..., cr.Tensor], ...] | None = None  # when central differences need others


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
BROADCAST_PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)


def _rng(draw: Any) -> tuple[int, np.random.Generator]:
    seed = draw(seeds())
    return seed, np.random.default_rng(seed)


def pair(values_a: Values, values_b: Values) -> Callable[..., list[np.ndarray]]:
    return lambda rng, shape_a, shape_b: [values_a(rng, shape_a), values_b(rng, shape_b)]


def unary(values: Values = normal, shapes: st.SearchStrategy = SHAPES, **params: st.SearchStrategy) -> Any:
    @st.composite
    def cases(draw: Any) -> Case:
        seed, rng = _rng(draw)
        arrays = (values(rng, draw(shapes)),)
        return Case(arrays, {k: draw(v) for k, v in params.items()}, seed)

    return cases()


def binary(make: Callable[..., list[np.ndarray]]) -> Any:
    """Two inputs of mutually broadcastable shapes: scalars, 1-D, (3, 1, 4) with (2, 4), ..."""

    @st.composite
    def cases(draw: Any) -> Case:
        seed, rng = _rng(draw)
        shape_a, shape_b = draw(BROADCAST_PAIRS).input_shapes
        return Case(tuple(make(rng, shape_a, shape_b)), {}, seed)

    return cases()


@st.composite
def axes(draw: Any, ndim: int) -> int | tuple[int, ...] | None:
    """None, one axis or a tuple of distinct axes in any order, each possibly negative."""
    kind = draw(st.sampled_from(["none", "int", "tuple"])) if ndim else "none"
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


def _count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return math.prod(shape)
    picked = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a] for a in picked)


def reduction(values: Values = normal, ddof: bool = False) -> Any:
    @st.composite
    def cases(draw: Any) -> Case:
        seed, rng = _rng(draw)
        shape = draw(SHAPES)
        axis = draw(axes(len(shape)))
        params = {"axis": axis, "keepdims": draw(st.booleans())}
        if ddof:
            # n - 1 = 0 gives inf (tested on its own below): ask for a correction of 1 only where two or
            # more elements are reduced.
            choices = list(VAR_DDOF) if _count(shape, axis) > 1 else ["ddof0", "correction0", "biased"]
            params["ddof"] = draw(st.sampled_from(choices))
        return Case((values(rng, shape),), params, seed)

    return cases()


NORM_P = [2, "fro", 1, 3, 0.5, -1, math.inf, -math.inf]  # p = 0: PyTorch passes no gradient (tested below)


def norm_cases() -> Any:
    """A reduction's input and axes, and a norm's p; |x| in [0.5, 2] (no zeros, no ties)."""

    @st.composite
    def cases(draw: Any) -> Case:
        seed, rng = _rng(draw)
        shape = draw(SHAPES)
        params = {"axis": draw(axes(len(shape))), "keepdims": draw(st.booleans()), "p": draw(st.sampled_from(NORM_P))}
        return Case((nonzero(rng, shape),), params, seed)

    return cases()


def along_axis(values: Values = normal) -> Any:
    """An input of one or more dimensions and one (possibly negative) axis of it."""

    @st.composite
    def cases(draw: Any) -> Case:
        seed, rng = _rng(draw)
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        return Case((values(rng, shape),), {"axis": draw(st.integers(-len(shape), len(shape) - 1))}, seed)

    return cases()


# --------------------------------------------------------------------- reductions
def torch_reduce(fn: Callable[..., torch.Tensor], x: torch.Tensor, axis: Any, keepdims: bool, **kw: Any) -> Any:
    if axis is None:  # torch spells "all axes" differently per function: reduce the flattened tensor instead
        out = fn(x.reshape(-1), dim=0, **kw)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return fn(x, dim=axis, keepdim=keepdims, **kw)


def reduce_forms(name: str) -> tuple[Callable[..., cr.Tensor], ...]:
    return (
        lambda x, axis, keepdims: getattr(x, name)(axis, keepdims),
        lambda x, axis, keepdims: getattr(cr, name)(x, axis=axis, keepdims=keepdims),
        lambda x, axis, keepdims: getattr(cr, name)(x, dim=axis, keepdim=keepdims),
    )


# var and std: the default correction is PyTorch's (divide by n - 1); ddof is NumPy's spelling.
VAR_DDOF: dict[str, dict[str, Any]] = {
    "default": {},
    "ddof0": {"ddof": 0},
    "correction0": {"correction": 0},
    "biased": {"unbiased": False},
    "ddof1": {"ddof": 1},
    "correction1": {"correction": 1},
    "unbiased": {"unbiased": True},
}


def torch_var(x: torch.Tensor, axis: Any, keepdims: bool, ddof: str, fn: Any = torch.var) -> torch.Tensor:
    if ddof in ("ddof0", "correction0", "biased"):
        return torch_reduce(fn, x, axis, keepdims, correction=0)
    return torch_reduce(fn, x, axis, keepdims)  # torch's default: n - 1


# --------------------------------------------------------------------- matmul
MATMUL_KINDS = ("1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched", "batched@1d")


@st.composite
def matmul_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    kind = draw(st.sampled_from(MATMUL_KINDS))
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)
    ).input_shapes
    if not batch_a and not batch_b:
        batch_a = (2,)
    shape_a, shape_b = {
        "1d@1d": ((k,), (k,)),
        "1d@2d": ((k,), (k, m)),
        "2d@1d": ((n, k), (k,)),
        "2d@2d": ((n, k), (k, m)),
        "batched": ((*batch_a, n, k), (*batch_b, k, m)),
        "1d@batched": ((k,), (*batch_a, *batch_b, k, m)),
        "batched@1d": ((*batch_a, *batch_b, n, k), (k,)),
    }[kind]
    return Case((normal(rng, shape_a), normal(rng, shape_b)), {}, seed)


@st.composite
def linear_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))  # x is 1-D, 2-D or 3-D
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    arrays = [normal(rng, (*batch, n_in)), normal(rng, (n_out, n_in))]
    if draw(st.booleans()):
        arrays.append(normal(rng, (n_out,)))
    return Case(tuple(arrays), {}, seed)


@st.composite
def cross_entropy_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    targets = rng.integers(0, c, size=n)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return Case((normal(rng, (n, c)) * 3,), {"targets": targets, "reduction": reduction}, seed)


def torch_cross_entropy(z: torch.Tensor, targets: np.ndarray, reduction: str) -> torch.Tensor:
    return TF.cross_entropy(z, torch.from_numpy(targets), reduction=reduction)


# --------------------------------------------------------------------- movement
def _flat_positions(shape: tuple[int, ...], index: Any) -> torch.Tensor:
    """Which flat elements ``x[index]`` picks, by NumPy's indexing rules (which chainrule follows)."""
    return torch.from_numpy(np.array(np.arange(math.prod(shape)).reshape(shape)[index]))


def torch_index(x: torch.Tensor, index: Any) -> torch.Tensor:
    # NOTE: torch has no negative-step slices and places int + array indices differently from
    # NumPy, so the reference gathers the same elements from the flattened tensor; torch's
    # gather gradient (index_put with accumulate) then scatter-adds repeated picks.
    return x.reshape(-1)[_flat_positions(tuple(x.shape), index)]


@st.composite
def index_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=5))

    def piece(n: int, kind: str) -> Any:
        if kind == "slice":
            start, stop = draw(st.none() | st.integers(-n, n)), draw(st.none() | st.integers(-n, n))
            return slice(start, stop, draw(st.sampled_from([None, 1, 2, 3, -1, -2])))
        if kind == "int":
            return draw(st.integers(-n, n - 1))
        if kind == "array":  # repeated picks are likely: up to 6 draws from n <= 5 positions
            picks = rng.integers(-n, n, draw(st.integers(1, 6)))
            return picks.tolist() if draw(st.booleans()) else picks
        return rng.random(n) < 0.6  # a 1-D boolean mask

    kind = draw(st.sampled_from(["slice", "int", "array", "array2d", "mask", "mask_nd", "tuple", "ellipsis"]))
    if kind in ("slice", "int", "array", "mask"):
        index = piece(shape[0], kind)
    elif kind == "array2d":
        index = rng.integers(-shape[0], shape[0], (2, 3))
    elif kind == "mask_nd":
        index = rng.random(shape[: draw(st.integers(1, len(shape)))]) < 0.5
    elif kind == "ellipsis":
        index = (Ellipsis, piece(shape[-1], draw(st.sampled_from(["slice", "int", "array"]))))
    else:  # slices and ints around at most one integer array or mask
        used = draw(st.integers(1, len(shape)))
        kinds = [draw(st.sampled_from(["slice", "int"])) for _ in range(used)]
        kinds[draw(st.integers(0, used - 1))] = draw(st.sampled_from(["array", "mask", "slice"]))
        index = tuple(piece(shape[i], k) for i, k in enumerate(kinds))
    return Case((normal(rng, shape),), {"index": index}, seed)


@st.composite
def join_cases(draw: Any, new_axis: bool) -> Case:
    """2 or 3 inputs for concatenate (sizes differ along the axis) or stack (equal shapes)."""
    seed, rng = _rng(draw)
    count = draw(st.integers(2, 3))
    base = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    ndim = len(base)
    if new_axis:
        axis = draw(st.integers(-ndim - 1, ndim))
        shapes = [base] * count
    else:
        axis = draw(st.integers(-ndim, ndim - 1))
        at = axis % ndim
        shapes = [(*base[:at], draw(st.integers(1, 3)), *base[at + 1 :]) for _ in range(count)]
    return Case(tuple(normal(rng, s) for s in shapes), {"axis": axis}, seed)


@st.composite
def transpose_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    ndim = len(shape)
    perm = tuple(a - ndim if draw(st.booleans()) else a for a in draw(st.permutations(range(ndim))))
    pair_ = tuple(draw(st.integers(-ndim, ndim - 1)) for _ in range(2))
    return Case((normal(rng, shape),), {"perm": perm, "pair": pair_}, seed)


def _random_shape(rng: np.random.Generator, size: int) -> tuple[int, ...]:
    """A random shape with ``size`` elements (prime factors dealt into 1-4 axes), sometimes with a -1."""
    factors, n, p = [], size, 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    dims = [1] * int(rng.integers(1, 5))
    for f in rng.permutation(factors):
        dims[rng.integers(len(dims))] *= int(f)
    if rng.random() < 0.5:
        dims[rng.integers(len(dims))] = -1
    return tuple(dims)


@st.composite
def reshape_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
    ndim = len(shape)
    ones = [i for i, n in enumerate(shape) if n == 1]
    squeeze_axes = tuple(a - ndim if draw(st.booleans()) else a for a in ones[: draw(st.integers(0, len(ones)))])
    params = {
        "target": _random_shape(rng, math.prod(shape)),
        "start": draw(st.integers(0, max(ndim - 1, 0))),
        "squeeze": squeeze_axes[0] if len(squeeze_axes) == 1 else (squeeze_axes or None),
        "unsqueeze": draw(st.integers(-ndim - 1, ndim)),
    }
    return Case((normal(rng, shape),), params, seed)


def torch_reshape(x: torch.Tensor, target: Any, start: int, squeeze: Any, unsqueeze: int, form: str) -> Any:
    if form == "reshape":
        return x.reshape(target)
    if form == "flatten":
        return torch.flatten(x, start)
    if form == "squeeze":
        return x.squeeze() if squeeze is None else x.squeeze(squeeze)
    return x.unsqueeze(unsqueeze)


@st.composite
def broadcast_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    target = draw(SHAPES)
    kept = target[draw(st.integers(0, len(target))) :]
    shape = tuple(1 if draw(st.booleans()) else n for n in kept)
    return Case((normal(rng, shape),), {"shape": target}, seed)


@st.composite
def where_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    shape_c, shape_a, shape_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=4)
    ).input_shapes
    return Case((normal(rng, shape_a), normal(rng, shape_b)), {"cond": np.asarray(rng.random(shape_c) < 0.5)}, seed)


@st.composite
def clip_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    lo = draw(st.sampled_from([-1.0, -0.5, 0.0]))
    hi = lo + draw(st.sampled_from([0.5, 1.5]))
    which = draw(st.sampled_from(["lo", "hi", "both"]))
    x = away_from((lo, hi))(rng, draw(SHAPES))  # no input within 0.05 of a bound: the kinks
    return Case((x,), {"lo": None if which == "hi" else lo, "hi": None if which == "lo" else hi}, seed)


@st.composite
def pow_scalar_cases(draw: Any) -> Case:
    seed, rng = _rng(draw)
    p = draw(st.sampled_from([3, 2, 1, 0.5, -1, -2.5, 1.5]))
    values = normal if p in (3, 2, 1) else positive  # non-integer or negative powers: positive bases
    return Case((values(rng, draw(SHAPES)),), {"p": p}, seed)


# --------------------------------------------------------------------- the table
SPECS: dict[str, OpSpec] = {
    # ---- elementwise binary (broadcasting)
    "add": OpSpec(binary(pair(normal, normal)), (lambda a, b: a + b, cr.add), lambda a, b: a + b),
    "sub": OpSpec(binary(pair(normal, normal)), (lambda a, b: a - b, cr.sub), lambda a, b: a - b),
    "mul": OpSpec(binary(pair(normal, normal)), (lambda a, b: a * b, cr.mul), lambda a, b: a * b),
    "div": OpSpec(binary(pair(normal, nonzero)), (lambda a, b: a / b, cr.div), lambda a, b: a / b),
    "pow": OpSpec(binary(pair(positive, normal)), (lambda a, b: a**b, cr.pow, lambda a, b: a.pow(b)), torch.pow),
    "maximum": OpSpec(binary(apart_pair), (cr.maximum, lambda a, b: a.maximum(b)), torch.maximum),
    "minimum": OpSpec(binary(apart_pair), (cr.minimum, lambda a, b: a.minimum(b)), torch.minimum),
    "where": OpSpec(
        where_cases(),
        (
            lambda a, b, cond: cr.where(cond, a, b),
            lambda a, b, cond: cr.where(cr.tensor(cond), a, b),
            lambda a, b, cond: cr.where(cond.astype(np.int64), a, b),  # nonzero means True
        ),
        lambda a, b, cond: torch.where(torch.from_numpy(cond), a, b),
    ),
    # ---- elementwise unary
    "neg": OpSpec(unary(), (lambda x: -x, cr.neg), torch.neg),
    "exp": OpSpec(unary(), (cr.exp, lambda x: x.exp()), torch.exp),
    "log": OpSpec(unary(positive), (cr.log, lambda x: x.log()), torch.log),
    "sqrt": OpSpec(unary(positive), (cr.sqrt, lambda x: x.sqrt()), torch.sqrt),
    "abs": OpSpec(unary(away_from((0.0,))), (cr.abs, abs, lambda x: x.abs()), torch.abs),
    "tanh": OpSpec(unary(), (cr.tanh, lambda x: x.tanh()), torch.tanh),
    "sigmoid": OpSpec(unary(), (cr.sigmoid, lambda x: x.sigmoid()), torch.sigmoid),
    "relu": OpSpec(unary(away_from((0.0,))), (cr.relu, lambda x: x.relu()), torch.relu),
    "leaky_relu": OpSpec(
        unary(away_from((0.0,)), slope=st.sampled_from([0.01, 0.1])),
        (lambda x, slope: cr.leaky_relu(x, slope), lambda x, slope: cr.leaky_relu(x, negative_slope=slope)),
        lambda x, slope: TF.leaky_relu(x, slope),
    ),
    "elu": OpSpec(
        unary(away_from((0.0,)), alpha=st.sampled_from([1.0, 0.5])),
        (lambda x, alpha: cr.elu(x, alpha),),
        lambda x, alpha: TF.elu(x, alpha),
    ),
    "softplus": OpSpec(
        unary(beta=st.sampled_from([1.0, 2.0])),
        (lambda x, beta: cr.softplus(x, beta),),
        # NOTE: torch returns x itself where beta * x > threshold (default 20), off by up to
        # e^-20 ~ 2e-9; chainrule computes the exact value, so the reference raises the threshold.
        lambda x, beta: TF.softplus(x, beta=beta, threshold=50.0),
    ),
    "pow_scalar": OpSpec(
        pow_scalar_cases(),
        (lambda x, p: x**p, lambda x, p: cr.pow(x, p), lambda x, p: x.pow(p)),
        lambda x, p: x**p,
    ),
    "clip": OpSpec(
        clip_cases(),
        (
            lambda x, lo, hi: cr.clip(x, lo, hi),
            lambda x, lo, hi: cr.clamp(x, min=lo, max=hi),
            lambda x, lo, hi: x.clip(lo, hi),
        ),
        lambda x, lo, hi: torch.clamp(x, min=lo, max=hi),
    ),
    "cast": OpSpec(
        unary(),
        (lambda x: x.astype(np.float32), lambda x: x.float(), lambda x: cr.astype(x, "float32")),
        lambda x: x.float(),  # float64 -> float32 rounds identically in both; the grad comes back as float64
        # NOTE: a float32 output rounds eps = 1e-6 perturbations away (float32 resolves ~6e-8 relative), so
        # central differences check a widening cast instead, which loses nothing (x86: 80-bit long double).
        gradcheck_forms=(lambda x: x.astype(np.longdouble),),
    ),
    # ---- reductions and the softmax family
    "sum": OpSpec(reduction(), reduce_forms("sum"), partial(torch_reduce, torch.sum)),
    "mean": OpSpec(reduction(), reduce_forms("mean"), partial(torch_reduce, torch.mean)),
    "var": OpSpec(
        reduction(ddof=True),
        (
            lambda x, axis, keepdims, ddof: x.var(axis, keepdims, **VAR_DDOF[ddof]),
            lambda x, axis, keepdims, ddof: cr.var(x, dim=axis, keepdim=keepdims, **VAR_DDOF[ddof]),
        ),
        torch_var,
    ),
    "std": OpSpec(
        reduction(ddof=True),
        (
            lambda x, axis, keepdims, ddof: x.std(axis, keepdims, **VAR_DDOF[ddof]),
            lambda x, axis, keepdims, ddof: cr.std(x, dim=axis, keepdim=keepdims, **VAR_DDOF[ddof]),
        ),
        partial(torch_var, fn=torch.std),
    ),
    # amax/amin, like chainrule, split the gradient among tied elements (inputs here never tie)
    "max": OpSpec(reduction(distinct), reduce_forms("max"), partial(torch_reduce, torch.amax)),
    "min": OpSpec(reduction(distinct), reduce_forms("min"), partial(torch_reduce, torch.amin)),
    "norm": OpSpec(
        norm_cases(),
        (
            lambda x, axis, keepdims, p: x.norm(p, axis, keepdims),
            lambda x, axis, keepdims, p: cr.norm(x, p, axis=axis, keepdims=keepdims),
        ),
        lambda x, axis, keepdims, p: torch.linalg.vector_norm(x, 2 if p == "fro" else p, dim=axis, keepdim=keepdims),
    ),
    "logsumexp": OpSpec(reduction(), reduce_forms("logsumexp"), partial(torch_reduce, torch.logsumexp)),
    "softmax": OpSpec(
        along_axis(),
        (lambda x, axis: x.softmax(axis), lambda x, axis: cr.softmax(x, dim=axis)),
        lambda x, axis: torch.softmax(x, dim=axis),
    ),
    "log_softmax": OpSpec(
        along_axis(),
        (lambda x, axis: x.log_softmax(axis), lambda x, axis: cr.log_softmax(x, dim=axis)),
        lambda x, axis: torch.log_softmax(x, dim=axis),
    ),
    # ---- linear algebra
    "matmul": OpSpec(matmul_cases(), (lambda a, b: a @ b, cr.matmul, lambda a, b: a.matmul(b)), torch.matmul),
    "linear": OpSpec(linear_cases(), (cr.linear,), TF.linear),
    # ---- fused losses
    "cross_entropy": OpSpec(
        cross_entropy_cases(),
        (
            cr.softmax_cross_entropy,
            lambda z, targets, reduction: cr.nn.functional.cross_entropy(z, targets, reduction=reduction),
        ),
        torch_cross_entropy,
    ),
    # ---- movement
    "reshape": OpSpec(
        reshape_cases(),
        (
            lambda x, target, **_: x.reshape(target),
            lambda x, target, **_: cr.reshape(x, *target),
            lambda x, target, **_: x.view(*target),
            lambda x, start, **_: x.flatten(start),
            lambda x, start, **_: cr.flatten(x, start),
            lambda x, squeeze, **_: x.squeeze(squeeze),
            lambda x, squeeze, **_: cr.squeeze(x, dim=squeeze),
            lambda x, unsqueeze, **_: x.unsqueeze(unsqueeze),
            lambda x, unsqueeze, **_: cr.unsqueeze(x, dim=unsqueeze),
        ),
        None,  # set below: the torch reference depends on the form
    ),
    "transpose": OpSpec(
        transpose_cases(),
        (
            lambda x, **_: x.T,
            lambda x, **_: cr.transpose(x),
            lambda x, perm, **_: cr.transpose(x, perm),
            lambda x, perm, **_: x.permute(*perm),
            lambda x, perm, **_: cr.permute(x, perm),
            lambda x, pair, **_: x.transpose(*pair),  # two ints swap two axes (PyTorch), at every rank
            lambda x, pair, **_: cr.swapaxes(x, *pair),
        ),
        None,  # set below
    ),
    "broadcast_to": OpSpec(
        broadcast_cases(),
        (cr.broadcast_to, lambda x, shape: x.broadcast_to(shape), lambda x, shape: x.expand(shape)),
        lambda x, shape: torch.broadcast_to(x, shape),
    ),
    "index": OpSpec(index_cases(), (lambda x, index: x[index], lambda x, index: x.__getitem__(index)), torch_index),
    "concatenate": OpSpec(
        join_cases(new_axis=False),
        (
            lambda *xs, axis: cr.concatenate(list(xs), axis),
            lambda *xs, axis: cr.cat(xs, dim=axis),
        ),
        lambda *xs, axis: torch.cat(xs, dim=axis),
    ),
    "stack": OpSpec(
        join_cases(new_axis=True),
        (lambda *xs, axis: cr.stack(list(xs), axis), lambda *xs, axis: cr.stack(xs, dim=axis)),
        lambda *xs, axis: torch.stack(xs, dim=axis),
    ),
}

# Forms whose torch reference differs per spelling: the reference takes the form's index.
RESHAPE_TORCH_FORM = ("reshape",) * 3 + ("flatten",) * 2 + ("squeeze",) * 2 + ("unsqueeze",) * 2
TRANSPOSE_TORCH_FORM = ("reverse", "reverse", "perm", "perm", "perm", "pair", "pair")


def torch_transpose(x: torch.Tensor, perm: Any, pair: Any, form: str) -> torch.Tensor:
    if form == "reverse":
        return x.permute(*reversed(range(x.ndim)))
    if form == "perm":
        return x.permute(*perm)
    return x.transpose(*pair)


FORM_DEPENDENT = {
    "reshape": lambda form: partial(torch_reshape, form=RESHAPE_TORCH_FORM[form]),
    "transpose": lambda form: partial(torch_transpose, form=TRANSPOSE_TORCH_FORM[form]),
}


def reference(name: str, form: int) -> Callable[..., torch.Tensor]:
    return FORM_DEPENDENT[name](form) if name in FORM_DEPENDENT else SPECS[name].torch


# --------------------------------------------------------------------- the table's own tests
def test_every_registered_op_has_a_spec() -> None:
    missing = sorted(set(cr.OPS) - set(SPECS))
    assert not missing, f"ops registered without a row in tests/test_ops.py SPECS: {missing}"


def test_specs_name_only_registered_ops() -> None:
    unknown = sorted(set(SPECS) - set(cr.OPS))
    assert not unknown, f"SPECS rows for ops that are not registered in chainrule.OPS: {unknown}"


def test_registry_maps_names_to_op_classes() -> None:
    for name, op in cr.OPS.items():
        assert issubclass(op, cr.ops.Op) and op.name == name


@pytest.mark.parametrize("name", sorted(SPECS))
@op_settings
@given(data=st.data())
def test_op_matches_torch(name: str, data: st.DataObject) -> None:
    spec = SPECS[name]
    case = data.draw(spec.cases, label="case")
    form = data.draw(st.integers(0, len(spec.forms) - 1), label="form")
    out, _ = check_against_torch(
        partial(spec.forms[form], **case.params),
        partial(reference(name, form), **case.params),
        case.arrays,
        seed=case.seed,
    )
    assert name in graph_ops(out), f"the spec for {name!r} did not run the {name!r} op: {graph_ops(out)}"


@pytest.mark.parametrize("name", sorted(SPECS))
@op_settings
@given(data=st.data())
def test_op_gradcheck(name: str, data: st.DataObject) -> None:
    spec = SPECS[name]
    forms = spec.gradcheck_forms or spec.forms
    case = data.draw(spec.cases, label="case")
    fn = forms[data.draw(st.integers(0, len(forms) - 1), label="form")]
    assert gradcheck_fn(lambda *xs: fn(*xs, **case.params), case.arrays)


# --------------------------------------------------------------------- broadcasting, named shapes
BROADCAST_SHAPE_PAIRS = [
    ((3, 1, 4), (2, 4)),
    ((2, 4), (3, 1, 4)),
    ((), (3,)),
    ((3,), ()),
    ((), ()),
    ((5,), (5,)),
    ((2, 3), (3,)),
    ((4, 1), (1, 5)),
    ((2, 1, 3), (1, 4, 1)),
]
BINARY_VALUES = {
    "add": pair(normal, normal),
    "sub": pair(normal, normal),
    "mul": pair(normal, normal),
    "div": pair(normal, nonzero),
    "pow": pair(positive, normal),
    "maximum": apart_pair,
    "minimum": apart_pair,
}


@pytest.mark.parametrize("shapes", BROADCAST_SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY_VALUES))
def test_binary_op_broadcasts(name: str, shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    arrays = BINARY_VALUES[name](np.random.default_rng(7), *shapes)
    fn = SPECS[name].forms[0]
    out, leaves = check_against_torch(fn, SPECS[name].torch, arrays, seed=1)
    assert out.shape == np.broadcast_shapes(*shapes)
    assert [leaf.grad.shape for leaf in leaves] == list(shapes)
    assert gradcheck_fn(fn, arrays)


# --------------------------------------------------------------------- reductions, named axes
REDUCTION_AXES = [None, 0, 1, 2, -1, -3, (0, 2), (2, 0), (-1, 0), (1, -3), (0, 1, 2)]
REDUCTIONS = {
    "sum": torch.sum,
    "mean": torch.mean,
    "var": torch.var,
    "std": torch.std,
    "max": torch.amax,
    "min": torch.amin,
    "logsumexp": torch.logsumexp,
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", REDUCTION_AXES, ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_axes(name: str, axis: Any, keepdims: bool) -> None:
    x = distinct(np.random.default_rng(3), (2, 3, 4))
    out, _ = check_against_torch(
        lambda t: getattr(t, name)(axis, keepdims),
        partial(torch_reduce, REDUCTIONS[name], axis=axis, keepdims=keepdims),
        [x],
    )
    alias = getattr(cr, name)(cr.tensor(x), dim=axis, keepdim=keepdims)
    assert np.array_equal(alias.data, out.data), "dim/keepdim must be the same as axis/keepdims"


def test_var_default_is_torchs_and_ddof_is_numpys_spelling() -> None:
    x = normal(np.random.default_rng(4), (3, 5))
    # PyTorch's default correction (n - 1)
    check_against_torch(lambda t: t.var(), lambda t: torch.var(t), [x])
    assert_close(cr.tensor(x).var().data, np.var(x, ddof=1))
    # the population variance: NumPy's ddof=0 and PyTorch's spellings
    for spelling in ({"ddof": 0}, {"correction": 0}, {"unbiased": False}):
        check_against_torch(
            lambda t, kw=spelling: cr.var(t, dim=1, **kw), lambda t: torch.var(t, dim=1, correction=0), [x]
        )
    assert_close(cr.tensor(x).var(ddof=0).data, np.var(x))
    check_against_torch(lambda t: t.var(0, True, 2), lambda t: torch.var(t, 0, keepdim=True, correction=2), [x])
    with pytest.raises(TypeError, match="not ddof and correction"):
        cr.var(cr.tensor(x), ddof=0, correction=1)
    with pytest.raises(TypeError, match="non-negative int"):
        cr.var(cr.tensor(x), correction=-1)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("correction", [2, 3, 50])
def test_var_and_std_where_the_correction_reaches_the_count(name, correction) -> None:
    # NOTE: the forward divides by max(0, n - correction) (inf, or NaN for 0/0) and the gradient by
    # n - correction itself: PyTorch's rules, cross-checked value by value, infinities included.
    x = normal(np.random.default_rng(5), (3, 2))
    x[:, 1] = 0.25  # a constant column: 0/0 in the forward
    t = cr.tensor(x, requires_grad=True)
    out = getattr(cr, name)(t, dim=0, correction=correction)
    out.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    tout = getattr(torch, name)(tx, dim=0, correction=correction)
    tout.sum().backward()
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-12, equal_nan=True)


def test_std_of_a_constant_has_gradient_zero_as_in_torch() -> None:
    x = np.full((4,), 1.5)
    t = cr.tensor(x, requires_grad=True)
    t.std().backward()
    tx = torch.tensor(x, requires_grad=True)
    tx.std().backward()
    np.testing.assert_array_equal(t.grad, tx.grad.numpy())
    assert np.all(t.grad == 0)


# --------------------------------------------------------------------- matmul, named shapes
MATMUL_SHAPES = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((3, 4), (4, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((5, 3, 4), (4, 2)),
    ((3, 4), (2, 4, 5)),
    ((1, 3, 4), (2, 4, 2)),
    ((4,), (2, 3, 4, 5)),
    ((2, 3, 4, 5), (5,)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_shapes(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    rng = np.random.default_rng(5)
    arrays = [normal(rng, s) for s in shapes]
    out, _ = check_against_torch(lambda a, b: a @ b, torch.matmul, arrays)
    assert out.shape == np.matmul(*arrays).shape
    assert gradcheck_fn(lambda a, b: a @ b, arrays)


# --------------------------------------------------------------------- index
INDEX_CASES = {
    "slice": (slice(1, 4), lambda t: t[1:4]),
    "slice_step": (slice(None, None, 2), lambda t: t[::2]),
    "negative_step": (slice(None, None, -1), lambda t: t.flip(0)),
    "negative_step_2": (slice(4, 0, -2), lambda t: t[torch.tensor([4, 2])]),
    "tuple_negative_step": ((slice(None), slice(3, None, -2)), lambda t: t[:, torch.tensor([3, 1])]),
    "int": (2, lambda t: t[2]),
    "negative_int": (-1, lambda t: t[-1]),
    "int_pair": ((1, -2), lambda t: t[1, -2]),
    "array_repeated": (np.array([0, 2, 2, 4, 2]), lambda t: t[torch.tensor([0, 2, 2, 4, 2])]),
    "list_repeated": ([1, 1, 3], lambda t: t[torch.tensor([1, 1, 3])]),
    "array_2d": (np.array([[0, 1], [1, 1]]), lambda t: t[torch.tensor([[0, 1], [1, 1]])]),
    "row_mask": (np.array([True, False, True, True, False]), lambda t: t[torch.tensor([1, 0, 1, 1, 0]).bool()]),
    "slice_array": ((slice(None), np.array([0, 0, 3])), lambda t: t[:, torch.tensor([0, 0, 3])]),
    "array_slice": ((np.array([4, 4]), slice(1, 3)), lambda t: t[torch.tensor([4, 4]), 1:3]),
    "slice_mask": ((slice(1, None), np.array([True, False, False, True])), lambda t: t[1:, torch.tensor([0, 3])]),
    "two_arrays_repeated": (
        (np.array([0, 1, 1, 0]), np.array([2, 2, 2, 2])),
        lambda t: t[torch.tensor([0, 1, 1, 0]), torch.tensor([2, 2, 2, 2])],
    ),
    "ellipsis": ((Ellipsis, 0), lambda t: t[..., 0]),
}


@pytest.mark.parametrize("label", sorted(INDEX_CASES))
def test_index(label: str) -> None:
    index, torch_fn = INDEX_CASES[label]
    x = normal(np.random.default_rng(6), (5, 4))
    check_against_torch(lambda t: t[index], torch_fn, [x])
    assert gradcheck_fn(lambda t: t[index], [x])


def test_index_full_mask_and_tensor_index() -> None:
    x = normal(np.random.default_rng(8), (3, 4))
    mask = x > 0
    check_against_torch(lambda t: t[t > 0], lambda t: t[torch.from_numpy(mask)], [x])
    picks = cr.tensor(np.array([2, 0, 2]))
    check_against_torch(lambda t: t[picks], lambda t: t[torch.tensor([2, 0, 2])], [x])


def test_index_repeated_indices_scatter_add() -> None:
    x = cr.tensor(np.arange(5.0), requires_grad=True)
    y = x[[0, 2, 2, 4, 2]]
    y.backward(np.array([1.0, 10.0, 100.0, 1000.0, 10000.0]))
    # element 2 was picked three times: its gradient is the sum 10 + 100 + 10000
    assert np.array_equal(x.grad, [1.0, 0.0, 10110.0, 0.0, 1000.0])

    m = cr.tensor(np.zeros((2, 3)), requires_grad=True)
    m[np.array([0, 0, 1]), np.array([1, 1, 2])].backward(np.array([1.0, 2.0, 4.0]))
    assert np.array_equal(m.grad, [[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])


# --------------------------------------------------------------------- joining and moving
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("count", [2, 3])
def test_concatenate_and_stack(count: int, axis: int) -> None:
    rng = np.random.default_rng(9)
    sizes = [1, 2, 3][:count]
    parts = [normal(rng, tuple(n if i == axis % 3 else 2 for i in range(3))) for n in sizes]
    check_against_torch(lambda *xs: cr.concatenate(xs, axis), lambda *xs: torch.cat(xs, axis), parts)
    same = [normal(rng, (2, 3)) for _ in range(count)]
    check_against_torch(lambda *xs: cr.stack(list(xs), dim=axis), lambda *xs: torch.stack(xs, axis), same)
    assert gradcheck_fn(lambda *xs: cr.concatenate(xs, axis), parts)
    assert gradcheck_fn(lambda *xs: cr.stack(xs, axis), same)


TRANSPOSES = {
    "T_2d": ((3, 4), lambda x: x.T, lambda t: t.T),
    "transpose_2d": ((3, 4), lambda x: cr.transpose(x), lambda t: t.transpose(0, 1)),
    "transpose_2d_swap": ((3, 4), lambda x: x.transpose(0, 1), lambda t: t.transpose(0, 1)),
    "transpose_2d_swap_negative": ((3, 4), lambda x: x.transpose(-2, -1), lambda t: t.transpose(-2, -1)),
    "transpose_2d_perm": ((3, 4), lambda x: cr.transpose(x, (1, 0)), lambda t: t.permute(1, 0)),
    "transpose_2d_identity": ((3, 4), lambda x: cr.transpose(x, (0, 1)), lambda t: t.permute(0, 1)),
    "T_3d": ((2, 3, 4), lambda x: x.T, lambda t: t.permute(2, 1, 0)),
    "transpose_perm": ((2, 3, 4), lambda x: cr.transpose(x, (1, 2, 0)), lambda t: t.permute(1, 2, 0)),
    "transpose_swap": ((2, 3, 4), lambda x: x.transpose(0, 2), lambda t: t.transpose(0, 2)),
    "transpose_swap_negative": ((2, 3, 4), lambda x: x.transpose(-1, -2), lambda t: t.transpose(-1, -2)),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "permute_negative": ((2, 3, 4), lambda x: cr.permute(x, (-1, 0, 1)), lambda t: t.permute(-1, 0, 1)),
    "swapaxes": ((2, 3, 4), lambda x: cr.swapaxes(x, 0, -1), lambda t: torch.swapaxes(t, 0, -1)),
}


@pytest.mark.parametrize("label", sorted(TRANSPOSES))
def test_transpose_and_permute(label: str) -> None:
    shape, fn, torch_fn = TRANSPOSES[label]
    out, _ = check_against_torch(fn, torch_fn, [normal(np.random.default_rng(10), shape)])
    assert graph_ops(out) == {"transpose"}


RESHAPES = {
    "reshape_minus_one": ((2, 3, 4), lambda x: x.reshape(-1, 4), lambda t: t.reshape(-1, 4)),
    "reshape_args": ((2, 3, 4), lambda x: cr.reshape(x, 3, -1, 2), lambda t: t.reshape(3, -1, 2)),
    "reshape_all": ((2, 3, 4), lambda x: x.reshape(-1), lambda t: t.reshape(-1)),
    "reshape_scalar": ((1, 1), lambda x: x.reshape(()), lambda t: t.reshape(())),
    "view": ((2, 3, 4), lambda x: x.view(6, 4), lambda t: t.view(6, 4)),
    "flatten": ((2, 3, 4), lambda x: x.flatten(1), lambda t: t.flatten(1)),
    "squeeze_all": ((1, 3, 1, 2), lambda x: x.squeeze(), lambda t: t.squeeze()),
    "squeeze_axis": ((1, 3, 1, 2), lambda x: x.squeeze(0), lambda t: t.squeeze(0)),
    "squeeze_negative": ((1, 3, 1, 2), lambda x: cr.squeeze(x, -2), lambda t: t.squeeze(-2)),
    "squeeze_dim": ((1, 3, 1, 2), lambda x: x.squeeze(dim=2), lambda t: t.squeeze(dim=2)),
    "squeeze_tuple": ((1, 3, 1, 2), lambda x: x.squeeze((0, 2)), lambda t: t.squeeze((0, 2))),
    "unsqueeze_front": ((3, 2), lambda x: x.unsqueeze(0), lambda t: t.unsqueeze(0)),
    "unsqueeze_back": ((3, 2), lambda x: x.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "unsqueeze_dim": ((3, 2), lambda x: cr.unsqueeze(x, dim=1), lambda t: t.unsqueeze(1)),
    "unsqueeze_scalar": ((), lambda x: x.unsqueeze(0), lambda t: t.unsqueeze(0)),
}


@pytest.mark.parametrize("label", sorted(RESHAPES))
def test_reshape_squeeze_unsqueeze(label: str) -> None:
    shape, fn, torch_fn = RESHAPES[label]
    out, _ = check_against_torch(fn, torch_fn, [normal(np.random.default_rng(11), shape)])
    assert graph_ops(out) == {"reshape"}, "squeeze, unsqueeze, view and flatten are the reshape op"


@pytest.mark.parametrize(
    ("shape", "target"), [((3, 1), (2, 3, 4)), ((), (2, 2)), ((4,), (3, 4)), ((1, 1), (1, 5)), ((2, 3), (2, 3))]
)
def test_broadcast_to(shape: tuple[int, ...], target: tuple[int, ...]) -> None:
    x = normal(np.random.default_rng(12), shape)
    out, leaves = check_against_torch(lambda t: t.expand(target), lambda t: t.expand(target), [x])
    assert out.shape == target and leaves[0].grad.shape == shape
    with pytest.raises(ValueError, match="broadcast_to"):
        cr.broadcast_to(cr.tensor(np.ones((3, 2))), (3, 4))


# --------------------------------------------------------------------- where, clip, cast
def test_where_condition_gets_no_gradient() -> None:
    rng = np.random.default_rng(13)
    x, y = normal(rng, (3, 4)), normal(rng, (4,))
    cond = x > 0.3
    _, (tx, ty) = check_against_torch(
        lambda a, b: cr.where(a > 0.3, a, b), lambda a, b: torch.where(torch.from_numpy(cond), a, b), [x, y]
    )
    assert (tx > 0.3).requires_grad is False  # a comparison is a constant: no gradient reaches it
    # the chosen branch gets the upstream gradient, the other one 0 (summed over y's broadcast axis)
    g = np.random.default_rng(0).standard_normal((3, 4))  # the upstream check_against_torch used
    assert_close(tx.grad, np.where(cond, g, 0.0))
    assert_close(ty.grad, np.where(cond, 0.0, g).sum(axis=0))
    # a Python number as either branch is a constant
    check_against_torch(lambda a: cr.where(cond, a, 0.0), lambda a: torch.where(torch.from_numpy(cond), a, 0.0), [x])
    check_against_torch(lambda b: cr.where(cond, 1.5, b), lambda b: torch.where(torch.from_numpy(cond), 1.5, b), [y])


@pytest.mark.parametrize(("lo", "hi"), [(-0.5, None), (None, 0.5), (-0.5, 0.5)])
def test_clip_bounds(lo: float | None, hi: float | None) -> None:
    # includes inputs exactly at the bounds: the gradient passes there (bounds included, as in torch)
    x = np.array([-2.0, -0.5, -0.2, 0.0, 0.3, 0.5, 1.7])
    _, (leaf,) = check_against_torch(lambda t: t.clip(lo, hi), lambda t: torch.clamp(t, lo, hi), [x])
    inside = np.ones_like(x, dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    g = np.random.default_rng(0).standard_normal(x.shape)
    assert np.array_equal(leaf.grad, np.where(inside, g, 0.0))
    assert gradcheck_fn(lambda t: cr.clamp(t, min=lo, max=hi), [x + 0.05])  # + 0.05: off the bounds
    with pytest.raises(ValueError, match="clip"):
        cr.clip(cr.tensor(x), None, None)


def test_cast_converts_the_gradient_back() -> None:
    x = normal(np.random.default_rng(14), (2, 3))
    out, (leaf,) = check_against_torch(lambda t: t.astype(np.float32), lambda t: t.float(), [x])
    assert out.dtype == np.float32 and leaf.grad.dtype == np.float64
    assert graph_ops(out) == {"cast"}

    x32 = cr.tensor(x.astype(np.float32), requires_grad=True)
    y = x32.double()
    assert y.dtype == np.float64
    (y * 3.0).sum().backward()
    assert x32.grad.dtype == np.float32 and np.array_equal(x32.grad, np.full((2, 3), 3.0, np.float32))
    assert cr.astype(x32, np.float32) is x32, "a cast to the same dtype is a no-op"


# --------------------------------------------------------------------- pow, linear, activations
@pytest.mark.parametrize("p", [3, 2, 1, 0.5, -1, -0.5, 0, 2.5])
def test_pow_scalar_exponents(p: float) -> None:
    rng = np.random.default_rng(15)
    x = positive(rng, (4,)) if p not in (3, 2, 1, 0) else normal(rng, (4,))
    out, _ = check_against_torch(lambda t: t**p, lambda t: t**p, [x])
    assert graph_ops(out) == {"pow_scalar"}
    assert gradcheck_fn(lambda t: t**p, [x])


def test_pow_gradients_at_zero_base() -> None:
    # d/dx x^0 = 0 everywhere, also at x = 0 (PyTorch's choice, and the limit)
    check_against_torch(lambda t: t**0, lambda t: t**0, [np.array([0.0, 2.0, -1.0])])
    # a tensor exponent: d/da a^b = 0 where b = 0, and d/db a^b = 0 at a = 0, b >= 0
    base, exponent = np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.0])
    check_against_torch(lambda a, b: a**b, torch.pow, [base, exponent])


def test_pow_tensor_exponent() -> None:
    rng = np.random.default_rng(16)
    base, exponent = positive(rng, (3, 4)), normal(rng, (4,))
    check_against_torch(lambda a, b: a**b, torch.pow, [base, exponent])
    check_against_torch(lambda a, b: cr.pow(a, b), torch.pow, [base, exponent])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(3,), (2, 3), (4, 2, 3)], ids=str)
def test_linear(x_shape: tuple[int, ...], bias: bool) -> None:
    rng = np.random.default_rng(17)
    arrays = [normal(rng, x_shape), normal(rng, (5, 3))] + ([normal(rng, (5,))] if bias else [])
    out, _ = check_against_torch(cr.linear, TF.linear, arrays)
    assert out.shape == (*x_shape[:-1], 5) and graph_ops(out) == {"linear"}
    assert gradcheck_fn(cr.linear, arrays)
    with pytest.raises(ValueError, match="linear"):
        cr.linear(cr.tensor(np.ones((2, 4))), cr.tensor(np.ones((5, 3))))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "what"),
    [
        ((2, 4), (5, 3), None, "in_features"),  # the last axis does not fit
        ((), (5, 3), None, "in_features"),  # a 0-d input would silently scale the weight
        ((2, 3), (3,), None, "in_features"),  # a 1-D weight would give a dot product
        ((2, 3), (5, 3), (1,), "bias"),  # a one-element bias would silently broadcast
        ((2, 3), (5, 3), (5, 1), "bias"),
    ],
    ids=str,
)
def test_linear_rejects_shapes_that_do_not_fit(x_shape, w_shape, b_shape, what) -> None:
    args = [cr.tensor(np.ones(x_shape)), cr.tensor(np.ones(w_shape))]
    if b_shape is not None:
        args.append(cr.tensor(np.ones(b_shape)))
    with pytest.raises(ValueError, match=f"linear: cannot apply to inputs of shapes.*{what}"):
        cr.linear(*args)


ACTIVATIONS = {
    "leaky_relu_0.01": (lambda x: cr.leaky_relu(x, 0.01), lambda t: TF.leaky_relu(t, 0.01)),
    "leaky_relu_0.1": (lambda x: cr.leaky_relu(x, negative_slope=0.1), lambda t: TF.leaky_relu(t, 0.1)),
    "leaky_relu_default": (cr.leaky_relu, TF.leaky_relu),
    "elu_1": (cr.elu, TF.elu),
    "elu_0.5": (lambda x: cr.elu(x, alpha=0.5), lambda t: TF.elu(t, alpha=0.5)),
    "softplus_1": (cr.softplus, TF.softplus),
    "softplus_2": (lambda x: cr.softplus(x, beta=2.0), lambda t: TF.softplus(t, beta=2.0)),
}


@pytest.mark.parametrize("label", sorted(ACTIVATIONS))
def test_activation_parameters(label: str) -> None:
    fn, torch_fn = ACTIVATIONS[label]
    x = np.array([-3.0, -1.2, -0.3, 0.25, 0.9, 4.0])
    check_against_torch(fn, torch_fn, [x])
    assert gradcheck_fn(fn, [x])


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_axes(name: str, axis: int) -> None:
    x = normal(np.random.default_rng(18), (2, 3, 4))
    out, _ = check_against_torch(lambda t: getattr(cr, name)(t, dim=axis), lambda t: getattr(torch, name)(t, axis), [x])
    assert np.array_equal(getattr(cr.tensor(x), name)(axis).data, out.data)
    if name == "softmax":
        assert_close(out.data.sum(axis=axis), np.ones(np.delete(x.shape, axis % 3)))


# --------------------------------------------------------------------- documented ties and kinks
def test_maximum_minimum_split_ties_equally() -> None:
    a, b = np.array([1.0, 2.0, 3.0, -1.0]), np.array([1.0, 0.0, 3.0, 5.0])
    upstream = np.ones(4)
    for fn, torch_fn, expected_a in (
        (cr.maximum, torch.maximum, [0.5, 1.0, 0.5, 0.0]),
        (cr.minimum, torch.minimum, [0.5, 0.0, 0.5, 1.0]),
    ):
        ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
        fn(ta, tb).backward(upstream)
        assert np.array_equal(ta.grad, expected_a)
        assert np.array_equal(tb.grad, 1.0 - np.array(expected_a))
        check_against_torch(fn, torch_fn, [a, b])  # torch makes the same choice


def test_max_min_reductions_split_ties_equally() -> None:
    x = cr.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    assert np.array_equal(x.grad, [0.0, 0.5, 0.5])
    y = cr.tensor(np.array([1.0, 1.0, 3.0]), requires_grad=True)
    y.min().backward()
    assert np.array_equal(y.grad, [0.5, 0.5, 0.0])
    m = np.array([[2.0, 2.0, 2.0], [0.0, 5.0, 5.0]])
    for name, torch_fn in (("max", torch.amax), ("min", torch.amin)):
        for axis in (None, 0, 1):
            check_against_torch(
                lambda t, n=name, a=axis: getattr(t, n)(a),
                lambda t, f=torch_fn, a=axis: torch_reduce(f, t, a, False),
                [m],
            )
    z = cr.tensor(m, requires_grad=True)
    z.max(axis=1).backward(np.array([3.0, 1.0]))
    assert np.array_equal(z.grad, [[1.0, 1.0, 1.0], [0.0, 0.5, 0.5]])


@pytest.mark.parametrize(
    ("fn", "torch_fn", "expected"),
    [
        (cr.relu, torch.relu, [0.0, 0.0, 1.0]),  # relu'(0) = 0
        (cr.abs, torch.abs, [-1.0, 0.0, 1.0]),  # abs'(0) = 0
        (lambda x: cr.leaky_relu(x, 0.1), lambda t: TF.leaky_relu(t, 0.1), [0.1, 0.1, 1.0]),  # slope at 0
        (lambda x: cr.elu(x, 0.5), lambda t: TF.elu(t, 0.5), [0.5 * math.exp(-1.0), 0.5, 1.0]),  # alpha at 0
    ],
    ids=["relu", "abs", "leaky_relu", "elu"],
)
def test_gradient_at_kink(fn: Any, torch_fn: Any, expected: list[float]) -> None:
    x = cr.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    fn(x).backward(np.ones(3))
    assert_close(x.grad, expected)
    check_against_torch(fn, torch_fn, [np.array([-1.0, 0.0, 2.0])])


# --------------------------------------------------------------------- numerical stability
EXTREME = np.array([1e4, -1e4, 0.0])
STABLE = {
    # name: (chainrule, torch, exact value, exact gradient for upstream ones)
    "softmax": (cr.softmax, partial(torch.softmax, dim=-1), [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    "log_softmax": (cr.log_softmax, partial(torch.log_softmax, dim=-1), [0.0, -2e4, -1e4], [-2.0, 1.0, 1.0]),
    "logsumexp": (cr.logsumexp, partial(torch.logsumexp, dim=0), 1e4, [1.0, 0.0, 0.0]),
    "sigmoid": (cr.sigmoid, torch.sigmoid, [1.0, 0.0, 0.5], [0.0, 0.0, 0.25]),
    "softplus": (cr.softplus, TF.softplus, [1e4, 0.0, math.log(2.0)], [1.0, 0.0, 0.5]),
}


@pytest.mark.parametrize("name", sorted(STABLE))
def test_extreme_inputs_are_exact_and_finite(name: str) -> None:
    fn, torch_fn, value, grad = STABLE[name]
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, not even an intermediate one
        x = cr.tensor(EXTREME, requires_grad=True)
        out = fn(x)
        out.backward(np.ones(out.shape))
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()
    assert_close(out.data, value)
    assert_close(x.grad, grad)
    check_against_torch(fn, torch_fn, [EXTREME])


# --------------------------------------------------------------------- operands that are not tensors
SCALAR_OPERANDS = {
    "2*x": (lambda x: 2 * x, lambda t: 2 * t),
    "x*2": (lambda x: x * 2, lambda t: t * 2),
    "2+x": (lambda x: 2 + x, lambda t: 2 + t),
    "x+0.5": (lambda x: x + 0.5, lambda t: t + 0.5),
    "2-x": (lambda x: 2 - x, lambda t: 2 - t),
    "x-2": (lambda x: x - 2, lambda t: t - 2),
    "2/x": (lambda x: 2 / x, lambda t: 2 / t),
    "x/2": (lambda x: x / 2, lambda t: t / 2),
    "2**x": (lambda x: 2**x, lambda t: 2**t),
    "x**2": (lambda x: x**2, lambda t: t**2),
    "0.5**x": (lambda x: 0.5**x, lambda t: 0.5**t),
    "-x": (lambda x: -x, lambda t: -t),
}


@pytest.mark.parametrize("label", sorted(SCALAR_OPERANDS))
def test_python_scalar_operands(label: str) -> None:
    fn, torch_fn = SCALAR_OPERANDS[label]
    x = positive(np.random.default_rng(19), (2, 3))
    check_against_torch(fn, torch_fn, [x])
    assert gradcheck_fn(fn, [x])

    # a Python number takes the tensor's dtype: float32 stays float32, values and gradient included
    x32 = cr.tensor(x.astype(np.float32), requires_grad=True)
    out = fn(x32)
    out.backward(np.ones(out.shape, np.float32))
    assert out.dtype == np.float32 and x32.grad.dtype == np.float32
    t32 = torch.tensor(x.astype(np.float32), requires_grad=True)
    torch_fn(t32).sum().backward()
    assert_close(out.data, torch_fn(torch.from_numpy(x.astype(np.float32))), rtol=1e-6, atol=1e-6)  # float32 ulps
    assert_close(x32.grad, t32.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: cr.add(x, 0.5),
        lambda x: cr.sub(2, x),
        lambda x: cr.mul(x, 3),
        lambda x: cr.div(1.5, x),
        lambda x: cr.pow(x, 2.5),
        lambda x: cr.pow(2.0, x),
        lambda x: cr.maximum(x, 0.25),
        lambda x: cr.minimum(0.25, x),
        lambda x: cr.where(x > 1.0, x, 0.0),
        lambda x: cr.clip(x, 0.7, 1.2),
    ],
    ids=["add", "sub", "mul", "div", "pow_scalar", "pow", "maximum", "minimum", "where", "clip"],
)
def test_function_scalar_operands_keep_float32(fn: Callable[[cr.Tensor], cr.Tensor]) -> None:
    x = positive(np.random.default_rng(21), (2, 3))
    x32 = cr.tensor(x.astype(np.float32), requires_grad=True)
    out = fn(x32)
    out.backward(np.ones(out.shape, np.float32))
    assert out.dtype == np.float32 and x32.grad.dtype == np.float32
    assert_close(out.data, fn(cr.tensor(x)).data, rtol=1e-6, atol=1e-6)  # float32 vs float64: float32 ulps


ARRAY_OPERANDS = {
    "array+x": (lambda c, x: c + x, lambda c, t: c + t),
    "x+array": (lambda c, x: x + c, lambda c, t: t + c),
    "array-x": (lambda c, x: c - x, lambda c, t: c - t),
    "x*array": (lambda c, x: x * c, lambda c, t: t * c),
    "array/x": (lambda c, x: c / x, lambda c, t: c / t),
    "x/array": (lambda c, x: x / c, lambda c, t: t / c),
    "array**x": (lambda c, x: c**x, lambda c, t: c**t),
    "x**array": (lambda c, x: x**c, lambda c, t: t**c),
    "array@x": (lambda c, x: c @ x, lambda c, t: c @ t),
    "x@array": (lambda c, x: x @ c.T, lambda c, t: t @ c.T),
}


@pytest.mark.parametrize("label", sorted(ARRAY_OPERANDS))
def test_ndarray_operands(label: str) -> None:
    fn, torch_fn = ARRAY_OPERANDS[label]
    rng = np.random.default_rng(20)
    x, c = positive(rng, (3,)), positive(rng, (2, 3))  # c broadcasts against x (matmul: (2, 3) @ (3,), (3,) @ (3, 2))
    out, _ = check_against_torch(partial(fn, c), partial(torch_fn, torch.from_numpy(c)), [x])
    assert isinstance(out, cr.Tensor)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_broadcast_mismatch_names_op_and_shapes(name: str) -> None:
    a, b = cr.tensor(np.ones((2, 3))), cr.tensor(np.ones(4))
    with pytest.raises(ValueError) as err:
        getattr(cr, name)(a, b)
    message = str(err.value)
    assert name in message and "(2, 3)" in message and "(4,)" in message


def test_operator_broadcast_mismatch() -> None:
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        cr.tensor(np.ones((2, 3))) + cr.tensor(np.ones(4))


def test_matmul_mismatch_names_op_and_shapes() -> None:
    with pytest.raises(ValueError) as err:
        cr.tensor(np.ones((2, 3))) @ cr.tensor(np.ones((4, 2)))
    message = str(err.value)
    assert "matmul" in message and "(2, 3)" in message and "(4, 2)" in message


@pytest.mark.parametrize("other", ["a", [1], None, {"a": 1}, object()], ids=repr)
def test_unsupported_operand_type_raises_type_error(other: Any) -> None:
    x = cr.tensor(np.ones(2))
    for op in (lambda: x + other, lambda: other + x, lambda: x * other, lambda: x @ other, lambda: cr.add(x, other)):
        with pytest.raises(TypeError):
            op()


def test_requires_grad_on_integer_tensor_raises_type_error() -> None:
    with pytest.raises(TypeError, match="floating"):
        cr.tensor(np.arange(3), requires_grad=True)
    ints = cr.tensor(np.arange(3))
    with pytest.raises(TypeError):
        ints.requires_grad_()
    with pytest.raises(TypeError):
        ints.requires_grad = True


def test_fused_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 4))
    targets = rng.integers(0, 4, size=6)
    z = cr.tensor(logits, requires_grad=True)
    loss = cr.softmax_cross_entropy(z, targets)
    loss.backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(z.grad, (softmax - np.eye(4)[targets]) / 6, rtol=1e-12, atol=1e-15)
    assert graph_ops(loss) == {"cross_entropy"}
    big = cr.tensor(np.array([[1e4, -1e4, 0.0]]), requires_grad=True)
    value = cr.softmax_cross_entropy(big, np.array([1]))
    value.backward()
    assert value.item() == 2e4 and np.isfinite(big.grad).all()


@pytest.mark.parametrize(
    ("logits", "targets", "error", "match"),
    [
        ((3, 2), [0, 1], ValueError, r"\(3, 2\)"),
        ((2, 2), [0.0, 1.0], TypeError, "integer"),
        ((2, 2), [0, 2], IndexError, "0..1"),
    ],
)
def test_fused_cross_entropy_rejects_bad_targets(logits, targets, error, match):
    with pytest.raises(error, match=match):
        cr.softmax_cross_entropy(cr.tensor(np.zeros(logits)), np.array(targets))


# --------------------------------------------------------------------- size-dependent code paths
# Some rules take a different route for small inputs (fewer NumPy calls) than for large ones
# (in place, or a faster BLAS entry): both routes must give the same, correct numbers.
SIGMOID_SIZES = [1, 5, E_SMALL - 1, E_SMALL, 3 * E_SMALL]


@pytest.mark.parametrize("size", SIGMOID_SIZES)
@pytest.mark.parametrize("extreme", [False, True])
def test_sigmoid_small_and_large_inputs_match_torch(size: int, extreme: bool) -> None:
    x = np.random.default_rng(size).normal(0, 4, size)
    if extreme:  # one very negative element sends the whole input down the overflow-free route
        x[size // 2] = -1e4
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        check_against_torch(cr.sigmoid, torch.sigmoid, [x])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("size", [1, 7, 3 * E_SMALL])
@pytest.mark.parametrize("lowest", ["overflowing", "just_safe"])  # e^-x would overflow / the direct route's edge
def test_sigmoid_overflow_free_in_every_float_dtype(dtype: str, size: int, lowest: str) -> None:
    info = np.finfo(dtype)
    start = -float(np.log(info.max)) - 5 if lowest == "overflowing" else -float(np.log(info.max)) + 1.01
    x = np.linspace(start, 30, size).astype(dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out = cr.sigmoid(cr.tensor(x)).data
    assert out.dtype == np.dtype(dtype)
    expected = torch.sigmoid(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=float(info.eps) * 8, atol=float(info.tiny))


def test_sigmoid_nan_propagates_on_both_routes() -> None:
    for x in ([np.nan, 1.0], [1.0, np.nan, -1e4], [np.nan] * (2 * E_SMALL)):
        out = cr.sigmoid(cr.tensor(np.array(x))).data
        assert np.isnan(out).tolist() == np.isnan(x).tolist()


@pytest.mark.parametrize("batch", [3, 64])  # 64 x 80 inputs take the large-input product route
def test_linear_small_and_large_batches_match_torch(batch: int) -> None:
    rng = np.random.default_rng(batch)
    x, w, b = rng.normal(size=(batch, 80)), rng.normal(size=(5, 80)), rng.normal(size=5)
    assert (x.size < L_TINY) == (batch == 3)
    check_against_torch(cr.linear, TF.linear, [x, w, b])


# --------------------------------------------------------------------- norm at its edges
@pytest.mark.parametrize(
    ("values", "kwargs"),
    [
        (np.zeros(3), {}),  # 0 at the norm's kink: gradient 0, as in PyTorch
        (np.zeros(3), {"p": 3}),
        (np.zeros(3), {"p": 0.5}),
        (np.array([3.0, 0.0, 1.0]), {"p": 0.5}),  # |x|^(p-1) is infinite at 0: taken as 0
        (np.array([0.0, 2.0]), {"p": -2}),  # a zero makes a negative-p norm 0
        (np.array([3.0, -3.0, 1.0]), {"p": math.inf}),  # tied maxima share the gradient
        (np.array([3.0, -1.0, 1.0]), {"p": -math.inf}),
        (np.array(-2.0), {}),  # 0-d
        (np.array(-2.0), {"dim": -1}),
        (np.zeros(0), {}),  # empty: 0
        (np.zeros((2, 0)), {"dim": 1, "keepdim": True}),
        (np.arange(6.0).reshape(2, 3) - 2, {"p": "fro", "dim": (0, 1)}),
    ],
    ids=str,
)
def test_norm_edges_match_torch(values: np.ndarray, kwargs: dict[str, Any]) -> None:
    check_against_torch(lambda t: t.norm(**kwargs), lambda t: t.norm(**kwargs), [values])


def test_norm_p0_counts_and_passes_no_gradient() -> None:
    t = cr.tensor([3.0, 0.0, -1.0], dtype=np.float64, requires_grad=True)
    ref = torch.tensor([3.0, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
    t.norm(0).backward()
    ref.norm(0).backward()
    assert t.norm(0).item() == ref.norm(0).item() == 2.0
    assert t.grad.tolist() == [0.0, 0.0, 0.0] and (ref.grad is None or not ref.grad.any())


def test_norm_refusals_match_torch() -> None:
    x = np.zeros((2, 0))
    for lib in (cr, torch):
        t = lib.tensor(x)
        with pytest.raises(RuntimeError, match="empty"):
            t.norm(p=math.inf)
        with pytest.raises(RuntimeError):
            t.norm(p=math.inf, dim=1)
        with pytest.raises(IndexError):
            t.norm(dim=2)
    with pytest.raises(RuntimeError, match="'nuc' is not supported"):
        cr.ones((2, 2)).norm("nuc")
    with pytest.raises(TypeError, match="p must be a number"):
        cr.ones(2).norm(None)
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.norm(cr.tensor(np.arange(3)))
    assert cr.norm(cr.tensor(np.arange(3)), dtype=np.float64).item() == pytest.approx(math.sqrt(5))
    with pytest.raises(TypeError, match="not both"):
        cr.ones(2).norm(keepdim=True, keepdims=False)
