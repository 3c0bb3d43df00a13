"""Shared test helpers: run one computation through chainrule and PyTorch, compare values and every gradient.

The op tests (tinygrad style) describe a computation twice, once with chainrule and once with
PyTorch, and hand both to ``check_against_torch``: it builds float64 leaves from the same
arrays, runs forward, backpropagates the same random upstream gradient through both, and
compares the outputs and the gradient of every input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import chainrule as cr

# Tight by default: both libraries evaluate the same float64 formulas, so they agree to a few
# ulps; sums of up to ~64 terms (reductions, matmul) may differ in rounding order, which costs
# at most ~64 * 2^-52 ~ 1e-14 relative. A test that needs more says why next to its tolerance.
RTOL = 1e-10
ATOL = 1e-12

# Bounded so the whole op suite stays well under a minute; raise it locally to hunt for bugs:
#   CHAINRULE_OP_EXAMPLES=500 pytest tests/test_ops.py
OP_EXAMPLES = int(os.environ.get("CHAINRULE_OP_EXAMPLES", "20"))
op_settings = settings(
    max_examples=OP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_TORCH_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.bool: np.bool_}


def seeds() -> st.SearchStrategy[int]:
    """Seeds for NumPy generators: Hypothesis draws (and shrinks) the seed, NumPy draws the values."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def torch_dtype_as_numpy(t: torch.Tensor) -> np.dtype:
    return np.dtype(_TORCH_DTYPES[t.dtype])


def assert_close(actual: Any, expected: Any, *, rtol: float = RTOL, atol: float = ATOL, what: str = "") -> None:
    """Elementwise |actual - expected| <= atol + rtol |expected|, with equal shapes and NaN/inf in the same places."""
    actual = np.asarray(actual)
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def graph_ops(out: cr.Tensor) -> set[str]:
    """Names of all ops recorded in the graph that produced ``out``."""
    names: set[str] = set()
    stack = [out.op] if out.op is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.name)
        stack.extend(t.op for t in node.inputs if t.op is not None)
    return names


def check_against_torch(
    cr_fn: Callable[..., cr.Tensor],
    torch_fn: Callable[..., torch.Tensor],
    arrays: Sequence[np.ndarray],
    *,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[cr.Tensor, list[cr.Tensor]]:
    """Run ``cr_fn`` and ``torch_fn`` on leaves made from ``arrays``; compare forward and all input grads.

    Every array becomes a leaf that requires grad in both libraries. The same random upstream
    gradient (drawn from ``seed``) is backpropagated through both outputs. Returns chainrule's
    output and leaves so a test can check more (dtypes, graph contents).
    """
    cr_leaves = [cr.tensor(np.array(a), requires_grad=True) for a in arrays]
    torch_leaves = [torch.tensor(np.array(a), requires_grad=True) for a in arrays]

    out = cr_fn(*cr_leaves)
    ref = torch_fn(*torch_leaves)
    assert isinstance(out, cr.Tensor), f"chainrule returned {type(out).__name__}, not a Tensor"
    assert out.dtype == torch_dtype_as_numpy(ref), f"output dtype {out.dtype}, torch gives {ref.dtype}"
    assert_close(out.data, ref, rtol=rtol, atol=atol, what="forward value")

    upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    ref.backward(torch.from_numpy(np.array(upstream)))

    for i, (mine, theirs) in enumerate(zip(cr_leaves, torch_leaves)):
        assert theirs.grad is not None, f"torch computed no gradient for input {i}: the spec is wrong"
        assert mine.grad is not None, f"chainrule computed no gradient for input {i} of shape {mine.shape}"
        assert mine.grad.dtype == mine.dtype, f"input {i}: grad dtype {mine.grad.dtype}, input dtype {mine.dtype}"
        assert_close(mine.grad, theirs.grad, rtol=rtol, atol=atol, what=f"gradient of input {i}")
    return out, cr_leaves


def gradcheck_fn(fn: Callable[..., cr.Tensor], arrays: Sequence[np.ndarray]) -> bool:
    """``chainrule.gradcheck`` (central differences, its default tolerances) on float64 leaves."""
    leaves = [cr.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    return cr.gradcheck(fn, leaves)


# --------------------------------------------------------------------- input values
# Each takes a NumPy generator and a shape and returns float64 values suited to an op.
def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) * 1.5


def positive(rng: np.random.Generator, shape: tuple[int, ...], lo: float = 0.5, hi: float = 2.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape)


def nonzero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """|x| in [0.5, 2] with a random sign: safe divisors."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def away_from(points: Sequence[float], margin: float = 0.05) -> Callable[..., np.ndarray]:
    """Normal values pushed at least ``margin`` away from each kink in ``points``.

    Central differences use eps = 1e-6, so a margin of 0.05 keeps every perturbed input on
    the same side of the kink. The points must be more than 2 * margin apart.
    """

    def values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        x = normal(rng, shape)
        for p in points:
            close = np.abs(x - p) < margin
            x = np.where(close, p + np.where(x >= p, margin, -margin), x)
        return x

    return values


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """All values distinct and at least 0.11 apart, so max/min never tie (not even after +-eps)."""
    size = int(np.prod(shape))
    grid = rng.permutation(size) * 0.13 - 0.065 * size
    return (grid + rng.uniform(-0.01, 0.01, size)).reshape(shape)


def apart_pair(rng: np.random.Generator, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> list[np.ndarray]:
    """Two arrays whose broadcast elements differ by at least 0.3 everywhere (no maximum/minimum ties).

    a lies within 0.1 of k + 0.25 and b within 0.1 of k + 0.75 for integers k, so |a - b| >= 0.3.
    """
    a = rng.integers(-3, 3, shape_a) + 0.25 + rng.uniform(-0.1, 0.1, shape_a)
    b = rng.integers(-3, 3, shape_b) + 0.75 + rng.uniform(-0.1, 0.1, shape_b)
    return [a, b]


DOCS = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs"


def run_doc(name: str) -> dict[str, Any]:
    """Execute the ```python blocks of docs/<name> in order, in one namespace, and return it."""
    import re

    text = (DOCS / name).resolve().read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, f"docs/{name} should hold python code blocks"
    namespace: dict[str, Any] = {"__name__": f"docs_{name}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{name}[block {i}]", "exec"), namespace)
    namespace["__blocks__"] = blocks
    return namespace
