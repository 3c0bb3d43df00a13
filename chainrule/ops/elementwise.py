"""Elementwise ops: forward value and local gradient side by side.

Binary ops work on broadcast shapes; their gradients come back in the broadcast
shape and the engine sums them to each input's own shape (``unbroadcast``).
"""

from __future__ import annotations

import builtins

from chainrule.backend import ONE, ZERO, const, kernels, ndarray, xp
from chainrule.ops.base import Op, register

Grads = tuple[ndarray | None, ...]

# NOTE: the tanh, sigmoid and relu local gradients are each two or three NumPy calls, and the
# sigmoid four; the C extension's kernels evaluate the same expression in one call (same
# operations, same order, same rounding, NumPy's own e^x loop: bit for bit, tested) on plain
# float32/float64 arrays of a bounded size, and return None for anything else, where the rule's
# NumPy code runs. On a tiny network that saves about 0.5 us per NumPy call avoided, on a hidden
# layer the passes over memory and the temporaries; without the extension the NumPy code always
# runs. A kernel whose arithmetic raised a floating-point exception (overflow, inf * 0) declines
# too, so NumPy computes the value again and warns as its errstate says (docs/architecture.md).
_fused = kernels.fused_grad if kernels is not None else None
_small_sigmoid = kernels.small_sigmoid if kernels is not None else None
_TANH, _SIGMOID, _RELU = 0, 1, 2

#: Below this many elements NumPy's fixed cost per call dominates: rules skip in-place tricks.
SMALL = 64


def _lowest(x: ndarray, size: int) -> float:
    """The smallest element of a non-empty array (for a handful of elements Python's ``min`` over
    the values is several times cheaper than a NumPy reduction)."""
    if size < SMALL:
        return x.item() if size == 1 else builtins.min(x.ravel().tolist())
    return xp.minimum.reduce(x, axis=None)


#: Per float dtype, an x above which e^-x cannot overflow (minus the log of the largest finite
#: value, plus a margin): there sigmoid uses the direct form 1 / (1 + e^-x).
_SIGMOID_SAFE = {xp.dtype(t): 1 - float(xp.log(xp.finfo(t).max)) for t in ("float16", "float32", "float64")}


# --------------------------------------------------------------------- binary
@register
class AddOp(Op):
    """f(a, b) = a + b.  Add distributes: both inputs get the upstream gradient."""

    name = "add"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        return a + b

    def backward(self, upstream: ndarray) -> Grads:
        return upstream, upstream


@register
class SubOp(Op):
    """f(a, b) = a - b."""

    name = "sub"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        return a - b

    def backward(self, upstream: ndarray) -> Grads:
        return upstream, (-upstream if self.needs_input_grad[1] else None)


@register
class MulOp(Op):
    """f(a, b) = a * b.  Mul swaps: df/da = b, df/db = a."""

    name = "mul"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.saved = (a, b)
        return a * b

    def backward(self, upstream: ndarray) -> Grads:
        a, b = self.saved
        if a is b:
            # NOTE: x * x (a squared error): both local gradients are upstream * x, so one product
            # serves both; the engine adds them as it would add two equal products (bit for bit).
            grad = upstream * a if self.needs_input_grad[0] else None
            return grad, grad
        need_a, need_b = self.needs_input_grad
        return (upstream * b if need_a else None, upstream * a if need_b else None)


@register
class DivOp(Op):
    """f(a, b) = a / b;  df/da = 1/b,  df/db = -a/b^2."""

    name = "div"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.saved = (a, b)
        return a / b

    def backward(self, upstream: ndarray) -> Grads:
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        grad_a = upstream / b if need_a else None
        grad_b = -upstream * a / (b * b) if need_b else None
        return grad_a, grad_b


@register
class PowOp(Op):
    """f(a, b) = a ** b;  df/da = b a^(b-1),  df/db = a^b ln a.

    NOTE: df/db is taken as 0 where a == 0 and b >= 0 (the limit of a^b ln a), as in
    PyTorch; for a < 0, ln a is undefined and the gradient is NaN.
    """

    name = "pow"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        out = a**b
        self.saved = (a, b, out)
        return out

    def backward(self, upstream: ndarray) -> Grads:
        a, b, out = self.saved
        need_a, need_b = self.needs_input_grad
        grad_a = None
        if need_a:
            # NOTE: df/da is 0 where b == 0 (a^0 is constant), also at a == 0 where b a^(b-1) is 0 * inf.
            with xp.errstate(divide="ignore", invalid="ignore"):
                grad_a = upstream * xp.where(b == 0, 0, b * a ** (b - 1))
        grad_b = None
        if need_b:
            zero = (a == 0) & (b >= 0)
            with xp.errstate(divide="ignore", invalid="ignore"):
                log_a = xp.log(xp.where(zero, 1, a))
            grad_b = upstream * out * log_a
        return grad_a, grad_b


@register
class MaximumOp(Op):
    """f(a, b) = max(a, b): the max gate routes the gradient to the larger input.

    NOTE: at a tie (a == b) each input gets half of the upstream gradient, as in PyTorch.
    """

    name = "maximum"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.saved = (a, b)
        return xp.maximum(a, b)

    def backward(self, upstream: ndarray) -> Grads:
        a, b = self.saved
        dtype = upstream.dtype
        share_a = (a > b) + const(0.5, dtype) * (a == b)
        need_a, need_b = self.needs_input_grad
        return (upstream * share_a if need_a else None, upstream * (const(1, dtype) - share_a) if need_b else None)


@register
class MinimumOp(Op):
    """f(a, b) = min(a, b).  NOTE: ties split the gradient equally, as for maximum."""

    name = "minimum"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.saved = (a, b)
        return xp.minimum(a, b)

    def backward(self, upstream: ndarray) -> Grads:
        a, b = self.saved
        dtype = upstream.dtype
        share_a = (a < b) + const(0.5, dtype) * (a == b)
        need_a, need_b = self.needs_input_grad
        return (upstream * share_a if need_a else None, upstream * (const(1, dtype) - share_a) if need_b else None)


@register
class WhereOp(Op):
    """f(a, b) = a where cond else b (cond is a constant boolean array)."""

    name = "where"
    __slots__ = ("cond",)

    def forward(self, a: ndarray, b: ndarray, cond: ndarray) -> ndarray:
        self.cond = cond
        return xp.where(cond, a, b)

    def backward(self, upstream: ndarray) -> Grads:
        need_a, need_b = self.needs_input_grad
        zero = xp.zeros((), dtype=upstream.dtype)
        return (
            xp.where(self.cond, upstream, zero) if need_a else None,
            xp.where(self.cond, zero, upstream) if need_b else None,
        )

    def describe(self) -> str:
        return ""


# --------------------------------------------------------------------- unary
@register
class NegOp(Op):
    """f(x) = -x."""

    name = "neg"

    def forward(self, x: ndarray) -> ndarray:
        return -x

    def backward(self, upstream: ndarray) -> Grads:
        return (-upstream,)


@register
class PowScalarOp(Op):
    """f(x) = x ** p for a constant p;  f'(x) = p x^(p-1)."""

    name = "pow_scalar"
    __slots__ = ("exponent",)

    def forward(self, x: ndarray, exponent: float) -> ndarray:
        self.exponent = exponent
        self.saved = x
        if exponent == 2 and x.dtype.kind == "f":
            return x * x  # what NumPy's power does for 2, without converting the Python number
        return x**exponent

    def backward(self, upstream: ndarray) -> Grads:
        p = self.exponent
        x = self.saved
        if p == 2:
            return (upstream * (x + x),)
        if p == 0:  # NOTE: x^0 is constant; p x^(p-1) would give 0 * inf = nan at x = 0
            return (xp.zeros_like(upstream),)
        return (upstream * (p * x ** (p - 1)),)


@register
class ExpOp(Op):
    """f(x) = e^x;  f'(x) = e^x (the output itself)."""

    name = "exp"

    def forward(self, x: ndarray) -> ndarray:
        out = xp.exp(x)
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream * self.saved,)


@register
class LogOp(Op):
    """f(x) = ln x;  f'(x) = 1/x."""

    name = "log"

    def forward(self, x: ndarray) -> ndarray:
        self.saved = x
        return xp.log(x)

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream / self.saved,)


@register
class SqrtOp(Op):
    """f(x) = sqrt(x);  f'(x) = 1 / (2 sqrt(x))."""

    name = "sqrt"

    def forward(self, x: ndarray) -> ndarray:
        out = xp.sqrt(x)
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream / (self.saved + self.saved),)


@register
class AbsOp(Op):
    """f(x) = |x|;  f'(x) = sign(x).  NOTE: abs'(0) = 0 (PyTorch's choice too)."""

    name = "abs"

    def forward(self, x: ndarray) -> ndarray:
        self.saved = x
        return xp.abs(x)

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream * xp.sign(self.saved),)


@register
class TanhOp(Op):
    """f(x) = tanh(x);  f'(x) = 1 - tanh(x)^2."""

    name = "tanh"

    def forward(self, x: ndarray) -> ndarray:
        out = xp.tanh(x)
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        out = self.saved
        grad = _fused(_TANH, upstream, out) if _fused else None
        return (upstream * (ONE[out.dtype] - out * out) if grad is None else grad,)


@register
class SigmoidOp(Op):
    """f(x) = 1 / (1 + e^-x);  f'(x) = f(x) (1 - f(x)).

    NOTE: 1 / (1 + e^-x) is exact wherever e^-x cannot overflow (x above ``_SIGMOID_SAFE``
    of its dtype); when some x is lower the overflow-free e^-|x| form is used instead, so
    inputs of +-1e4 give exact, finite results without even an intermediate overflow.
    Small inputs are not computed in place: on arrays of a few elements NumPy's overlap
    handling makes ``out=`` slower than a fresh result.
    """

    name = "sigmoid"

    def forward(self, x: ndarray) -> ndarray:
        safe = _SIGMOID_SAFE.get(x.dtype)
        if _small_sigmoid is not None and safe is not None:
            out = _small_sigmoid(x, safe)  # the direct form below, in one call; None: not handled
            if out is not None:
                self.saved = out
                return out
        size = x.size
        if safe is not None and size and _lowest(x, size) > safe:
            one = ONE[x.dtype]
            if size < SMALL:
                out = one / (one + xp.exp(-x))
            else:
                out = xp.negative(x)
                xp.exp(out, out=out)
                out += one
                xp.reciprocal(out, out=out)
        else:
            z = xp.exp(-xp.abs(x))
            out = xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        out = self.saved
        grad = _fused(_SIGMOID, upstream, out) if _fused else None
        return (upstream * (out * (ONE[out.dtype] - out)) if grad is None else grad,)


@register
class ReluOp(Op):
    """f(x) = max(0, x);  f'(x) = 1 if x > 0 else 0.  NOTE: relu'(0) = 0."""

    name = "relu"

    def forward(self, x: ndarray) -> ndarray:
        # NOTE: the output is saved (it is kept for the next op anyway): out > 0 iff x > 0.
        out = xp.maximum(x, ZERO[x.dtype])
        self.saved = out
        return out

    def backward(self, upstream: ndarray) -> Grads:
        # NOTE: a product with the mask, not xp.where: where branches per element and is
        # ten times slower on the unpredictable masks of a hidden layer.
        out = self.saved
        grad = _fused(_RELU, upstream, out) if _fused else None
        return (upstream * (out > ZERO[out.dtype]) if grad is None else grad,)


@register
class LeakyReluOp(Op):
    """f(x) = x if x > 0 else slope * x.  NOTE: f'(0) = slope."""

    name = "leaky_relu"
    __slots__ = ("negative_slope",)

    def forward(self, x: ndarray, negative_slope: float) -> ndarray:
        self.negative_slope = negative_slope
        positive = x > 0
        self.saved = positive
        return x * self._slopes(positive, x.dtype)

    def _slopes(self, positive: ndarray, dtype: object) -> ndarray:
        """1 where x > 0, else the slope (arithmetic, not xp.where: see Relu.backward)."""
        # NOTE: positive + slope * (not positive) is exactly 1 or exactly the slope.
        return positive + ~positive * const(self.negative_slope, dtype)

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream * self._slopes(self.saved, upstream.dtype),)


@register
class EluOp(Op):
    """f(x) = x if x > 0 else alpha (e^x - 1);  f'(x) = 1 if x > 0 else f(x) + alpha."""

    name = "elu"
    __slots__ = ("alpha",)

    def forward(self, x: ndarray, alpha: float) -> ndarray:
        self.alpha = alpha
        positive = x > 0
        zero = const(0, x.dtype)
        # NOTE: x for x > 0 plus alpha (e^x - 1) for x <= 0, each side zero on the other's
        # half (expm1(0) = 0 exactly), and expm1 of min(x, 0) so nothing overflows.
        out = xp.maximum(x, zero) + const(alpha, x.dtype) * xp.expm1(xp.minimum(x, zero))
        self.saved = (positive, out)
        return out

    def backward(self, upstream: ndarray) -> Grads:
        positive, out = self.saved
        local = positive + (out + const(self.alpha, out.dtype)) * ~positive
        return (upstream * local,)


@register
class SoftplusOp(Op):
    """f(x) = ln(1 + e^(beta x)) / beta;  f'(x) = sigmoid(beta x).

    NOTE: evaluated as max(x, 0) + ln(1 + e^-|beta x|)/beta, exact and overflow-free.
    """

    name = "softplus"
    __slots__ = ("beta",)

    def forward(self, x: ndarray, beta: float) -> ndarray:
        self.beta = beta
        self.saved = x
        bx = beta * x
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(bx))) / beta

    def backward(self, upstream: ndarray) -> Grads:
        bx = self.beta * self.saved
        z = xp.exp(-xp.abs(bx))
        sig = xp.where(bx >= 0, 1 / (1 + z), z / (1 + z))
        return (upstream * sig,)


@register
class ClipOp(Op):
    """f(x) = min(max(x, lo), hi);  f'(x) = 1 inside [lo, hi] (bounds included), else 0."""

    name = "clip"
    __slots__ = ("hi", "lo")

    def forward(self, x: ndarray, lo: float | None, hi: float | None) -> ndarray:
        self.lo, self.hi = lo, hi
        self.saved = x
        return xp.clip(x, lo, hi)

    def backward(self, upstream: ndarray) -> Grads:
        x = self.saved
        inside = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return (upstream * inside,)


@register
class CastOp(Op):
    """f(x) = x converted to another dtype; the gradient is converted back."""

    name = "cast"
    __slots__ = ("dtype", "source_dtype")

    def forward(self, x: ndarray, dtype: object) -> ndarray:
        self.source_dtype = x.dtype
        out = x.astype(dtype)
        self.dtype = out.dtype
        return out

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream.astype(self.source_dtype),)

    def describe(self) -> str:
        return f"{self.source_dtype} -> {self.dtype}"
