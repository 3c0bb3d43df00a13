"""The XOR demo: a 2-4-1 network trained with nothing but the engine's tensor ops."""

from __future__ import annotations

import numpy as np

import chainrule as cr


def train_xor(steps: int = 2000, lr: float = 0.5, seed: int = 0, report_every: int = 200, quiet: bool = False):
    """Train a 2-4-1 tanh/sigmoid MLP on XOR with full-batch gradient descent.

    Returns (loss history, final predictions as an ndarray of 4 probabilities).
    """
    rng = np.random.default_rng(seed)
    x = cr.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = cr.tensor([[0], [1], [1], [0]])
    w1 = cr.tensor(rng.normal(0, 1, (4, 2)).astype(np.float32), requires_grad=True, name="W1")
    b1 = cr.tensor(np.zeros(4, np.float32), requires_grad=True, name="b1")
    w2 = cr.tensor(rng.normal(0, 1, (1, 4)).astype(np.float32), requires_grad=True, name="W2")
    b2 = cr.tensor(np.zeros(1, np.float32), requires_grad=True, name="b2")
    params = [w1, b1, w2, b2]
    history = []
    for step in range(1, steps + 1):
        hidden = cr.tanh(x @ w1.T + b1)
        out = cr.sigmoid(hidden @ w2.T + b2)
        loss = ((out - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with cr.no_grad():
            for p in params:
                p -= lr * p.grad  # in place (a leaf that requires grad: inside no_grad)
        history.append(loss.item())
        if not quiet and (step % report_every == 0 or step == 1):
            print(f"step {step:5d}  loss {loss.item():.6f}")
    with cr.no_grad():
        preds = cr.sigmoid(cr.tanh(x @ w1.T + b1) @ w2.T + b2).numpy().ravel()
    if not quiet:
        for inputs, target, p in zip(x.numpy(), y.numpy().ravel(), preds):
            print(f"  xor({int(inputs[0])}, {int(inputs[1])}) = {p:.4f}   target {int(target)}")
        if not np.isfinite(history[-1]) or not np.isfinite(preds).all():
            print(f"training diverged (the loss is {history[-1]}): lower --lr (now {lr:g})")
        else:
            correct = int(((preds > 0.5) == (y.numpy().ravel() > 0.5)).sum())
            print(f"{correct}/4 correct")
    return history, preds
