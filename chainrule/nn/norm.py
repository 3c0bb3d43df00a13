"""``BatchNorm1d``: normalize each feature over the batch, with learnable scale and shift."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.nn import functional as F
from chainrule.nn.module import Module, Parameter, register_module, resolve_dtype


@register_module
class BatchNorm1d(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per feature, for input (N, C) or (N, C, L).

    Training mode: mean and the BIASED variance of the current batch normalize the input,
    and the buffers are updated as PyTorch does:
    running_mean <- (1 - momentum) running_mean + momentum mean,
    running_var  <- (1 - momentum) running_var + momentum var_unbiased (n / (n - 1) var),
    where ``momentum=None`` means a cumulative average (momentum = 1 / num_batches_tracked).
    Evaluation mode: the running statistics are used instead (no update).
    Init: weight = 1, bias = 0, running_mean = 0, running_var = 1.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dt = resolve_dtype(dtype)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.weight = Parameter(np.ones(self.num_features, dtype=dt)) if affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype=dt)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    @property
    def capturable(self) -> bool:
        # Training mode updates the running statistics with NumPy, outside the ops.
        return not (self.training and self.track_running_stats)

    def forward(self, x: Any) -> Tensor:
        x = F.as_tensor(x)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}): expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got {x.shape}"
            )
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.data)
        update = self.training and self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if (update or not use_batch) else None,
            self.running_var if (update or not use_batch) else None,
            self.weight,
            self.bias,
            training=use_batch,
            momentum=momentum,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "type": "BatchNorm1d",
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }


__all__ = ["BatchNorm1d"]
