"""Matrix products."""

from __future__ import annotations

from chainrule.backend import kernels, ndarray, xp
from chainrule.ops.base import Op, register

Grads = tuple[ndarray | None, ...]

#: inputs with fewer elements than this take ``dot`` for every product (see ``LinearOp``)
_TINY = 4096

# NOTE: on small float32/float64 arrays the C extension adds the bias in place and sums the
# bias gradient (NumPy's add loop, as add.reduce calls it), bit for bit NumPy's results in one call
# each instead of a ufunc call of about 1 us; they decline (False / None) where NumPy is to do it.
_small_add_row = kernels.small_add_row if kernels is not None else None
_small_sum = kernels.small_sum if kernels is not None else None

_LINEAR_SHAPES = "the input's last axis must be the weight's in_features (weight is (out_features, in_features))"


@register
class MatMulOp(Op):
    """C = A @ B (1-D, 2-D and batched, NumPy rules);  dA = G @ B^T,  dB = A^T @ G.

    1-D operands are promoted to matrices (a row for A, a column for B) for the
    gradient and reshaped back; batch axes are summed back by the engine.
    """

    name = "matmul"

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.saved = (a, b)
        return a @ b

    def backward(self, upstream: ndarray) -> Grads:
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (upstream * b if need_a else None, upstream * a if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = upstream
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        grad_a = grad_b = None
        if need_a:
            grad_a = g @ xp.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                grad_a = grad_a.reshape(grad_a.shape[:-2] + grad_a.shape[-1:])
                if grad_a.ndim > 1:
                    grad_a = grad_a.reshape(-1, a.shape[0]).sum(axis=0)
        if need_b:
            grad_b = xp.swapaxes(a2, -1, -2) @ g
            if b.ndim == 1:
                grad_b = grad_b.reshape(grad_b.shape[:-1])
                if grad_b.ndim > 1:
                    grad_b = grad_b.reshape(-1, b.shape[0]).sum(axis=0)
        return grad_a, grad_b


@register
class LinearOp(Op):
    """y = x W^T + b for x (..., in), W (out, in), b (out,): the fused layer op.

    dx = G W,  dW = G^T x (summed over batch axes),  db = sum of G over batch axes.
    """

    name = "linear"

    # NOTE: ``a.dot(b)`` rather than ``a @ b``: with a 2-D right operand they are the same
    # product (one BLAS call), but the method skips the matmul ufunc's dispatch, which costs
    # about 1 us, as much as the whole product of a small layer.

    def forward(self, x: ndarray, weight: ndarray, bias: ndarray | None = None) -> ndarray:
        # NOTE: dot raises for a last axis that does not fit; a 0-d input or a weight that is not
        # 2-D would give a product of another meaning, and a bias of one element would broadcast.
        if weight.ndim != 2 or x.ndim == 0:
            raise ValueError(_LINEAR_SHAPES)
        try:
            out = x.dot(weight.T)
        except ValueError as err:
            raise ValueError(_LINEAR_SHAPES) from err
        if bias is not None:
            if bias.ndim != 1 or len(bias) != len(weight):
                raise ValueError("the bias must have shape (out_features,)")
            if _small_add_row is None or not _small_add_row(out, bias):
                out += bias
        self.saved = (x, weight)
        return out

    def backward(self, upstream: ndarray) -> Grads:
        x, weight = self.saved
        needs = self.needs_input_grad
        if upstream.ndim == 2:
            g2, x2 = upstream, x
        else:
            g2, x2 = upstream.reshape(-1, upstream.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_x = upstream.dot(weight) if needs[0] else None
        grad_w = None
        if needs[1]:  # NOTE: dot with a transposed left operand is ~10% slower than @ on a large batch
            grad_w = g2.T.dot(x2) if x2.size < _TINY else g2.T @ x2
        if len(needs) == 3:
            grad_b = None
            if needs[2]:
                grad_b = _small_sum(g2, True, 1) if _small_sum is not None else None
                if grad_b is None:
                    grad_b = xp.add.reduce(g2, axis=0)
            return grad_x, grad_w, grad_b
        return grad_x, grad_w
