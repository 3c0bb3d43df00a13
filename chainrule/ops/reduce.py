"""Reductions and the softmax family (axis-wise ops).

``axis`` reaching these ops is already normalized by ``chainrule.functional``: None
(all axes) or a tuple of non-negative ints.
"""

from __future__ import annotations

from chainrule.backend import const, kernels, ndarray, xp
from chainrule.ops.base import Op, register

Grads = tuple[ndarray | None, ...]

# NOTE: small float32/float64 arrays are summed by the C extension's kernel: NumPy's own add loop
# called as add.reduce calls it, so bit for bit the same sum, without the 1 us of the reduction's
# set-up (see chainrule/backend/_speedups.c); None where it does not apply.
_small_sum = kernels.small_sum if kernels is not None else None
_small_spread = kernels.small_spread if kernels is not None else None


def _small_total(x: ndarray, axis: tuple[int, ...] | None, keepdims: bool, count: int) -> ndarray | None:
    """The sum of ``x`` over ``axis`` divided by ``count``, from the C kernel: for all axes or
    axis 0 of a matrix without keepdims; None where the kernel does not apply (then NumPy)."""
    if _small_sum is None or keepdims:
        return None
    if axis is None:
        return _small_sum(x, False, count)
    if axis == (0,) and x.ndim == 2:
        return _small_sum(x, True, count)
    return None


def _expand(upstream: ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> ndarray:
    """Reinsert reduced axes so ``upstream`` broadcasts against the op's input."""
    if keepdims or axis is None:
        return upstream
    return xp.expand_dims(upstream, axis)


class _Reduction(Op):
    __slots__ = ("axis", "in_shape", "keepdims")


@register
class SumOp(_Reduction):
    """f(x) = sum of x over axis;  every element gets the upstream gradient."""

    name = "sum"

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> ndarray:
        self.axis, self.keepdims, self.in_shape = axis, keepdims, x.shape
        total = _small_total(x, axis, keepdims, 1)
        return x.sum(axis=axis, keepdims=keepdims) if total is None else total

    def backward(self, upstream: ndarray) -> Grads:
        return (_spread(_expand(upstream, self.axis, self.keepdims), self.in_shape),)


@register
class MeanOp(_Reduction):
    """f(x) = (1/n) sum of x over axis;  every element gets upstream / n."""

    name = "mean"

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> ndarray:
        self.axis, self.keepdims, self.in_shape = axis, keepdims, x.shape
        self.count = n = x.size if axis is None else _count(x.shape, axis)
        mean = _small_total(x, axis, keepdims, n)
        if mean is not None:
            return mean
        total = xp.add.reduce(x, axis=axis, keepdims=keepdims)
        dtype = x.dtype
        return total / (const(n, dtype) if dtype.kind == "f" else n)

    def backward(self, upstream: ndarray) -> Grads:
        if upstream.ndim == 0:
            # NOTE: the mean of everything (a loss): upstream / n divided straight into a fresh array,
            # one ufunc call with the same division per element (measured: half the time of a scalar
            # division followed by a fill); the C kernel does the same in one call.
            out = _small_spread(upstream, self.count, self.in_shape) if _small_spread is not None else None
            if out is not None:
                return (out,)
            n = const(self.count, upstream.dtype)
            out = xp.empty(self.in_shape, dtype=upstream.dtype)
            xp.divide(upstream, n, out=out)
            return (out,)
        n = const(self.count, upstream.dtype)
        return (_spread(_expand(upstream, self.axis, self.keepdims) / n, self.in_shape),)


def _spread(upstream: ndarray, shape: tuple[int, ...]) -> ndarray:
    """``upstream`` repeated to ``shape``: a filled array for a scalar (cheap), else a broadcast view."""
    if upstream.ndim == 0:
        out = xp.empty(shape, dtype=upstream.dtype)
        out.fill(upstream)
        return out
    return xp.broadcast_to(upstream, shape)


def _count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    n = 1
    for i, size in enumerate(shape):
        if axis is None or i in axis:
            n *= size
    return n


def _squares_over(centered: ndarray, axis: tuple[int, ...] | None, keepdims: bool, dof: int) -> ndarray:
    """sum centered^2 over ``axis`` / max(0, dof): inf (or NaN for 0/0) without a warning where dof <= 0."""
    with xp.errstate(divide="ignore", invalid="ignore"):
        return (centered * centered).sum(axis=axis, keepdims=keepdims) / const(max(dof, 0), centered.dtype)


def _var_grad(upstream: ndarray, centered: ndarray, dof: int) -> ndarray:
    """upstream * 2 (x - mean) / dof; NOTE: dof itself, not max(0, dof), as PyTorch's rule has it."""
    with xp.errstate(divide="ignore", invalid="ignore"):
        return upstream * (centered * (const(2, centered.dtype) / const(dof, centered.dtype)))


@register
class VarOp(_Reduction):
    """f(x) = sum (x - mean)^2 / (n - ddof);  f'(x_i) = 2 (x_i - mean) / (n - ddof)."""

    name = "var"
    __slots__ = ("ddof",)

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool, ddof: int) -> ndarray:
        self.axis, self.keepdims, self.in_shape, self.ddof = axis, keepdims, x.shape, ddof
        centered = x - x.mean(axis=axis, keepdims=True)
        self.saved = centered
        return _squares_over(centered, axis, keepdims, _count(x.shape, axis) - ddof)

    def backward(self, upstream: ndarray) -> Grads:
        dof = _count(self.in_shape, self.axis) - self.ddof
        return (_var_grad(_expand(upstream, self.axis, self.keepdims), self.saved, dof),)


@register
class StdOp(VarOp):
    """f(x) = sqrt(var(x));  f'(x_i) = (x_i - mean) / ((n - ddof) f), taken as 0 where f = 0 (PyTorch's rule)."""

    name = "std"
    __slots__ = ()

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool, ddof: int) -> ndarray:
        out = xp.sqrt(super().forward(x, axis, keepdims, ddof))  # var's forward saves the centered x
        self.saved = (self.saved, out)
        return out

    def describe(self) -> str:
        return f"ddof={self.ddof!r}"  # var's slot (Op.describe lists a class's own slots)

    def backward(self, upstream: ndarray) -> Grads:
        centered, out = self.saved
        out = _expand(out, self.axis, self.keepdims)
        with xp.errstate(divide="ignore", invalid="ignore"):
            upstream_var = xp.where(out == 0, 0, _expand(upstream, self.axis, self.keepdims) / (2 * out))
        dof = _count(self.in_shape, self.axis) - self.ddof
        return (_var_grad(upstream_var.astype(centered.dtype, copy=False), centered, dof),)


class _Extremum(_Reduction):
    """Shared rule of max and min: the gradient is routed to the extreme element(s).

    NOTE: when several elements tie for the extreme, they split the gradient equally.
    """

    reduce = xp.maximum.reduce

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> ndarray:
        self.axis, self.keepdims, self.in_shape = axis, keepdims, x.shape
        out = type(self).reduce(x, axis=axis, keepdims=True)
        self.saved = x == out
        return out if keepdims else (out.reshape(()) if axis is None else xp.squeeze(out, axis))

    def backward(self, upstream: ndarray) -> Grads:
        hits = self.saved
        share = hits / hits.sum(axis=self.axis, keepdims=True)
        return (_expand(upstream, self.axis, self.keepdims) * share.astype(upstream.dtype, copy=False),)


@register
class MaxOp(_Extremum):
    """f(x) = max of x over axis."""

    name = "max"
    reduce = xp.maximum.reduce


@register
class MinOp(_Extremum):
    """f(x) = min of x over axis."""

    name = "min"
    reduce = xp.minimum.reduce


@register
class NormOp(_Reduction):
    """f(x) = (sum |x|^p)^(1/p) over axis (a vector p-norm);  f'(x_i) = sign(x_i) (|x_i| / f)^(p-1).

    p = 2: x_i / f;  p = 1: sign(x_i);  p = inf (-inf): the largest (smallest) |x_i|, whose elements
    share the gradient when they tie, as max does;  p = 0: the count of nonzero elements, no gradient.
    NOTE: where f = 0, or x_i = 0 for p < 1, the gradient is taken as 0, as PyTorch does.
    """

    name = "norm"
    __slots__ = ("ord",)

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool, ord: float) -> ndarray:
        self.axis, self.keepdims, self.in_shape, self.ord = axis, keepdims, x.shape, ord
        if ord in (xp.inf, -xp.inf) and _count(x.shape, axis) == 0:
            raise RuntimeError(f"norm(): the p={ord} norm of an empty tensor (shape {x.shape}) has no value")
        size = abs(x)
        if ord == 2:
            out = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
        elif ord == 1:
            out = size.sum(axis=axis, keepdims=True)
        elif ord == xp.inf:
            out = size.max(axis=axis, keepdims=True)
        elif ord == -xp.inf:
            out = size.min(axis=axis, keepdims=True)
        elif ord == 0:
            out = (size != 0).sum(axis=axis, keepdims=True).astype(x.dtype)
        else:
            with xp.errstate(divide="ignore"):  # |0|^p for p < 0 is inf, and the norm 0
                out = (size**ord).sum(axis=axis, keepdims=True) ** (1 / ord)
        self.saved = (x, size, out)
        return out if keepdims else (out.reshape(()) if axis is None else xp.squeeze(out, axis))

    def backward(self, upstream: ndarray) -> Grads:
        x, size, out = self.saved
        ord, g = self.ord, _expand(upstream, self.axis, self.keepdims)
        if ord == 0:
            return (xp.zeros_like(x),)
        if ord == 1:
            return (g * xp.sign(x),)
        with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if ord == 2:
                grad = xp.where(out == 0, 0, g * x / out)
            elif ord in (xp.inf, -xp.inf):
                hits = size == out
                grad = g * xp.sign(x) * hits / hits.sum(axis=self.axis, keepdims=True)
            else:
                grad = xp.where((out == 0) | (size == 0), 0, g * xp.sign(x) * (size / out) ** (ord - 1))
        return (grad.astype(x.dtype, copy=False),)


def _stable_logsumexp(x: ndarray, axis: tuple[int, ...] | int | None) -> ndarray:
    """ln sum e^x over axis, keepdims=True, shifted by the max so nothing overflows."""
    m = xp.maximum.reduce(x, axis=axis, keepdims=True)
    # NOTE: an all -inf slice has max -inf; shift by 0 there to avoid inf - inf.
    if not xp.isfinite(m).all():
        m = xp.where(xp.isfinite(m), m, 0)
    return m + xp.log(xp.add.reduce(xp.exp(x - m), axis=axis, keepdims=True))


@register
class LogSumExpOp(_Reduction):
    """f(x) = ln sum_i e^(x_i);  f'(x_i) = softmax(x)_i."""

    name = "logsumexp"

    def forward(self, x: ndarray, axis: tuple[int, ...] | None, keepdims: bool) -> ndarray:
        self.axis, self.keepdims, self.in_shape = axis, keepdims, x.shape
        out = _stable_logsumexp(x, axis)
        self.saved = (x, out)
        return out if keepdims else (out.reshape(()) if axis is None else xp.squeeze(out, axis))

    def backward(self, upstream: ndarray) -> Grads:
        x, out = self.saved
        return (_expand(upstream, self.axis, self.keepdims) * xp.exp(x - out),)


@register
class SoftmaxOp(Op):
    """s_i = e^(x_i) / sum_j e^(x_j);  ds/dx applied to g: s * (g - sum(g * s))."""

    name = "softmax"
    __slots__ = ("axis",)

    def forward(self, x: ndarray, axis: int) -> ndarray:
        self.axis = axis
        out = xp.exp(x - _stable_logsumexp(x, axis))
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        s = self.saved
        return (s * (upstream - (upstream * s).sum(axis=self.axis, keepdims=True)),)


@register
class LogSoftmaxOp(Op):
    """f(x)_i = x_i - ln sum_j e^(x_j);  applied to g: g - softmax(x) * sum(g)."""

    name = "log_softmax"
    __slots__ = ("axis",)

    def forward(self, x: ndarray, axis: int) -> ndarray:
        self.axis = axis
        out = x - _stable_logsumexp(x, axis)
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream - xp.exp(self.saved) * upstream.sum(axis=self.axis, keepdims=True),)
