"""Optimizers and schedulers against PyTorch: same parameters, same gradient sequence, same trajectory."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (1,)]
STEPS = 10


def _run_pair(cr_cls, torch_cls, options: dict, steps: int = STEPS, seed: int = 0):
    """Feed identical synthetic gradients to both optimizers; return both parameter trajectories."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s) for s in SHAPES]
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(steps)]
    ours = [cr.tensor(a, requires_grad=True) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    opt_cr = cr_cls(ours, **options)
    opt_t = torch_cls(theirs, **options)
    for step_grads in grads:
        opt_cr.zero_grad()
        opt_t.zero_grad()
        for p, q, g in zip(ours, theirs, step_grads):
            p.grad = cr.tensor(g.copy())
            q.grad = torch.tensor(g)
        opt_cr.step()
        opt_t.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(
                p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14
            )  # float64: what the math allows
    return ours, theirs


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "betas": (0.85, 0.95)}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name: str, options: dict) -> None:
    _run_pair(getattr(optim, name), getattr(torch.optim, name), options)


def test_param_groups_match_torch() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    ours = [cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)]
    theirs = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    opt_cr = optim.SGD(
        [{"params": [ours[0]], "weight_decay": 0.1}, {"params": [ours[1]], "lr": 0.01}], lr=0.1, momentum=0.9
    )
    opt_t = torch.optim.SGD(
        [{"params": [theirs[0]], "weight_decay": 0.1}, {"params": [theirs[1]], "lr": 0.01}], lr=0.1, momentum=0.9
    )
    for _ in range(5):
        for p, q in zip(ours, theirs):
            g = rng.normal(size=p.shape)
            p.grad, q.grad = cr.tensor(g), torch.tensor(g)
        opt_cr.step()
        opt_t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12)


def test_parameters_without_grad_are_skipped() -> None:
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(p.data, [1.0, 2.0])
    assert p not in opt.state


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_float32_stays_float32_and_in_place(cls) -> None:
    p = cr.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    data = p.data
    opt = cls([p], lr=0.1, **({"momentum": 0.9} if cls in (optim.SGD, optim.RMSprop) else {}))
    for _ in range(3):
        (p * p).sum().backward()
        opt.step()
        opt.zero_grad()
    assert p.data.dtype == np.float32
    assert p.data is data
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))


def test_plain_sgd_takes_the_short_path_with_the_general_rules_numbers(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    shapes = [(3, 2), (3,), (1, 3)]

    for dtype in (np.float32, np.float64):
        short = [cr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in shapes]
        general = [cr.tensor(p.data.copy(), requires_grad=True) for p in short]
        grads = [rng.normal(size=s) for s in shapes]
        for p, q, g in zip(short, general, grads):
            p.grad = cr.tensor(g.astype(dtype))
            q.grad = cr.tensor(g.astype(dtype))
        short_opt = optim.SGD(short, lr=0.3)
        general_opt = optim.SGD(general, lr=0.3)
        calls = []
        monkeypatch.setattr(optim.SGD, "_update", lambda *a, calls=calls: calls.append(a))
        short_opt.step()
        assert calls == []  # plain descent never goes through the per-parameter rule
        monkeypatch.undo()
        optim.Optimizer.step(general_opt)  # the general loop with SGD's _update
        for p, q in zip(short, general):
            assert p.data.dtype == dtype and np.array_equal(p.data, q.data)
    # momentum (or weight decay, or maximize) in any group takes the general rule
    w = cr.tensor(np.ones(2), requires_grad=True)
    w.grad = cr.ones_like(w)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    opt.step()
    assert "momentum_buffer" in opt.state[w]
    bad = cr.tensor(np.ones(2), requires_grad=True)
    bad.grad = cr.ones_like(bad)
    bad.grad.data = np.ones(3)  # assigning .grad checks the shape; its .data can still be swapped
    with pytest.raises(ValueError, match=r"SGD: parameter .*shape \(2,\) has a gradient of shape \(3,\)"):
        optim.SGD([bad], lr=0.1).step()
    bad.grad.data = np.ones(2, np.float32)  # a gradient array of another dtype is converted
    optim.SGD([bad], lr=0.5).step()
    assert bad.data.dtype == np.float64 and bad.data.tolist() == [0.5, 0.5]


def test_real_training_loop_decreases_loss() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    y = X @ w_true
    w = cr.zeros(3, dtype=np.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    for _ in range(300):
        opt.zero_grad()
        loss = ((cr.tensor(X) @ w - cr.tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.data, w_true, atol=1e-4)


def test_zero_grad() -> None:
    p = cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = cr.tensor([3.0])
    grad = p.grad
    opt.zero_grad(set_to_none=False)  # in place: the same tensor, now zeros (as in PyTorch)
    assert p.grad is grad and p.grad.data.tolist() == [0.0] and grad._version == 1
    opt.zero_grad()
    assert p.grad is None and grad.data.tolist() == [0.0]  # a gradient someone holds is left alone


def test_closure_returns_loss() -> None:
    p = cr.tensor([2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(p.data, [1.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), "invalid lr"),
        (lambda p: optim.SGD(p, lr=float("nan")), "finite"),
        (lambda p: optim.SGD(p, lr="0.1"), "must be a number"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "momentum"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-3), "weight_decay"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "beta2"),
        (lambda p: optim.Adam(p, betas=(-0.1, 0.9)), "beta1"),
        (lambda p: optim.Adam(p, betas=0.9), "pair"),
        (lambda p: optim.Adam(p, eps=-1.0), "eps"),
        (lambda p: optim.RMSprop(p, alpha=1.5), "alpha"),
        (lambda p: optim.SGD([], lr=0.1), "empty"),
        (lambda p: optim.SGD(p[0], lr=0.1), "single Tensor"),
        (lambda p: optim.SGD(p + p, lr=0.1), "more than once"),
        (lambda p: optim.SGD([{"params": p, "momentun": 0.9}], lr=0.1), "unknown hyperparameter"),
        (lambda p: optim.SGD([p[0] * 2], lr=0.1), "non-leaf"),
        (lambda p: optim.SGD([cr.tensor(np.arange(3))], lr=0.1), "floating-point"),
        (lambda p: optim.StepLR(optim.SGD(p, lr=0.1), step_size=0), "step_size"),
        (lambda p: optim.CosineAnnealingLR(optim.SGD(p, lr=0.1), T_max=0), "T_max"),
        (lambda p: optim.get_optimizer("adagrad", p), "unknown optimizer"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message: str) -> None:
    params = [cr.tensor([1.0, 2.0], requires_grad=True)]
    with pytest.raises((ValueError, TypeError), match=message):
        call(params)


def test_state_dict_round_trip() -> None:
    rng = np.random.default_rng(2)
    init = rng.normal(size=4)
    grads = [rng.normal(size=4) for _ in range(6)]
    a = cr.tensor(init, requires_grad=True)
    opt_a = optim.Adam([a], lr=0.01)
    for g in grads[:3]:
        a.grad = cr.tensor(g)
        opt_a.step()
    saved = opt_a.state_dict()
    b = cr.tensor(a.data.copy(), requires_grad=True)
    opt_b = optim.Adam([b], lr=0.5)
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["lr"] == 0.01
    for g in grads[3:]:
        a.grad, b.grad = cr.tensor(g), cr.tensor(g.copy())
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


# ------------------------------------------------------------------ schedulers
def _lr_sequences(make_cr, make_torch, epochs: int = 25):
    p_cr = cr.tensor([1.0], requires_grad=True)
    p_t = torch.tensor([1.0], requires_grad=True)
    opt_cr = optim.SGD([p_cr], lr=0.1)
    opt_t = torch.optim.SGD([p_t], lr=0.1)
    s_cr, s_t = make_cr(opt_cr), make_torch(opt_t)
    ours, theirs = [], []
    for _ in range(epochs):
        ours.append(opt_cr.param_groups[0]["lr"])
        theirs.append(opt_t.param_groups[0]["lr"])
        assert s_cr.get_last_lr() == [ours[-1]]
        opt_cr.step()
        opt_t.step()
        s_cr.step()
        s_t.step()
    return ours, theirs


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("StepLR", {"step_size": 3}),
        ("StepLR", {"step_size": 5, "gamma": 0.5}),
        ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingLR", {"T_max": 10}),
        ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ],
)
def test_schedulers_match_torch(name: str, options: dict) -> None:
    ours, theirs = _lr_sequences(
        lambda o: getattr(optim, name)(o, **options), lambda o: getattr(torch.optim.lr_scheduler, name)(o, **options)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_scheduler_scales_each_group_from_its_initial_lr() -> None:
    a, b = cr.tensor([1.0], requires_grad=True), cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == [0.05, 0.5]
