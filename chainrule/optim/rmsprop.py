"""RMSprop (Hinton's lecture 6e rule, in PyTorch's formulation)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.optim.optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    """Divide the gradient by a running root-mean-square of recent gradients.

    ``s <- α s + (1 - α) g²``; the step is ``g / (sqrt(s) + eps)``. With ``centered=True``
    the running mean ``ḡ`` of the gradient is also kept and ``sqrt(s - ḡ²)`` is used (an
    estimate of the gradient's standard deviation). With ``momentum`` μ a buffer
    ``b <- μ b + step`` is applied instead: ``p <- p - lr b``. ``weight_decay`` λ adds
    ``λ p`` to the gradient (L2). NOTE: eps is added after the square root, as in PyTorch
    (Keras adds it inside).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    _numbers: ClassVar[dict[str, dict[str, Any]]] = {
        **Optimizer._numbers,
        "alpha": {"high": 1.0},
        "eps": {},
        "momentum": {},
    }
    _switches = (*Optimizer._switches, "centered")

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        alpha = group["alpha"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param.data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(param.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param.data)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1.0 - alpha) * grad
            # NOTE: s - ḡ² >= 0 in exact arithmetic; clip the rounding error so sqrt never sees a negative.
            avg = np.sqrt(np.maximum(square_avg - grad_avg * grad_avg, 0.0))
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            param.data -= group["lr"] * buf
        else:
            param.data -= group["lr"] * (grad / avg)
