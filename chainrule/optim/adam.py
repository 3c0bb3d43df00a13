"""Adam (L2 weight decay, as ``torch.optim.Adam``) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.optim.optimizer import Optimizer, ParamsT, check_hyper


class Adam(Optimizer):
    """Adam (Kingma & Ba): per-coordinate steps scaled by running moments of the gradient.

    ``m <- β1 m + (1 - β1) g``, ``v <- β2 v + (1 - β2) g²``, then with step count t
    ``p <- p - lr · (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + eps)``.

    ``weight_decay`` λ is an L2 penalty: ``g + λ p`` enters the moments, exactly as in
    ``torch.optim.Adam``; for decay that bypasses the moments use ``AdamW``.
    ``amsgrad=True`` uses the running maximum of ``v`` in the denominator.
    """

    _decoupled = False
    _numbers: ClassVar[dict[str, dict[str, Any]]] = {**Optimizer._numbers, "eps": {}}
    _switches = (*Optimizer._switches, "amsgrad")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        name = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = (
            check_hyper("beta1", betas[0], high=1.0, open_high=True, owner=name),
            check_hyper("beta2", betas[1], high=1.0, open_high=True, owner=name),
        )

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        if wd:
            if self._decoupled:
                param.data *= 1.0 - lr * wd
            else:
                grad = grad + wd * param.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1.0 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + group["eps"]
        param.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p <- p (1 - lr λ)`` before the Adam step.

    The decay does not pass through the moments, so every weight shrinks at the same
    rate whatever its gradient history. Default ``weight_decay=1e-2``, as in PyTorch.
    """

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
