"""Forward-step and backward-step records of one point (PROTOCOL.md, ``forward_step`` / ``backward_step``).

The forward record runs the model's own layers on the point and keeps every weighted sum z and
activation a. The backward record runs ``chainrule.explain`` on that point's loss: the engine's
backward walk, recorded; each neuron's delta (dL/dz) and upstream (dL/da) are the gradients the
walk gave those tensors, each weight's gradient the one it gave the parameter, and the
activation's local derivative the node's own rule applied to a vector of ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.playground import network as net

if TYPE_CHECKING:
    from chainrule.playground.session import Session


def _point_inputs(session: Session, i: int) -> tuple[np.ndarray, np.ndarray]:
    x = net.features(session.X[i : i + 1], session.config["features"])
    t = net.targets(session.task, session.classes, session.y[i : i + 1])
    return x, t


def _run(session: Session, x: np.ndarray) -> tuple[list[Tensor], list[Tensor], list[Tensor], Tensor]:
    """Layer by layer: the inputs of each Linear, each z and each hidden activation (graph kept)."""
    model = session.model
    inputs, zs, acts = [], [], []
    a = Tensor(x)
    *hidden, last = model.layers
    for layer, act in zip(hidden, model.activations):
        inputs.append(a)
        z = layer(a)
        a = act(z)
        zs.append(z)
        acts.append(a)
    inputs.append(a)
    z_out = last(a)
    zs.append(z_out)
    return inputs, zs, acts, z_out


def _output_name(session: Session) -> str:
    if session.task == "regression":
        return "linear"
    return net.OUTPUT_ACTIVATION[(session.config["loss"], session.classes)]


def forward_record(session: Session, i: int) -> dict[str, Any]:
    """The ``forward_step`` message of point ``i``."""
    c = session.config
    x, t = _point_inputs(session, i)
    inputs, zs, acts, z_out = _run(session, x)
    shown = net.shown_output(z_out.data.astype(np.float64), session.task, c["loss"], session.classes)
    out_name = _output_name(session)
    out_a = z_out.data[0] if out_name == "linear" else (shown[0, 1:] if out_name == "sigmoid" else shown[0])
    layers = []
    for l, layer in enumerate(session.model.layers):
        a = acts[l].data[0] if l < len(acts) else out_a
        w, b = layer.weight.data, layer.bias.data
        layers.append(
            {
                "activation": c["activation"] if l < len(acts) else out_name,
                "neurons": [
                    {
                        "inputs": net.sig(inputs[l].data[0]),
                        "weights": net.sig(w[j]),
                        "bias": net.sig1(float(b[j])),
                        "z": net.sig1(float(zs[l].data[0, j])),
                        "a": net.sig1(float(a[j])),
                    }
                    for j in range(w.shape[0])
                ],
            }
        )
    loss = net.data_loss(z_out, Tensor(t), c["loss"], session.task, session.classes)
    if session.task == "regression":
        output = {
            "z": net.sig(z_out.data[0]),
            "p": net.sig(z_out.data[0]),
            "predicted": None,
            "target": float(session.y[i]),
        }
    else:
        output = {
            "z": net.sig(z_out.data[0]),
            "p": net.sig(shown[0]),
            "predicted": int(net.predicted_class(z_out.data, session.classes)[0]),
            "target": int(session.y[i]),
        }
    return {
        "type": "forward_step",
        "index": i,
        "point": session.points[i],
        "split": int(session.split[i]),
        "features": {"names": list(c["features"]), "values": net.sig(x[0])},
        "layers": layers,
        "output": output,
        "loss": net.sig1(float(loss.data)),
    }


def backward_numbers(session: Session, i: int) -> dict[str, Any]:
    """The backward pass of point ``i``'s data loss as arrays, per layer (first layer first).

    ``{"loss", "layers": [{"inputs", "da", "local", "delta", "weight_grad", "bias_grad"}]}``,
    each from ``chainrule.explain``'s record of the engine's walk.
    """
    from chainrule.viz.explain import explain

    c = session.config
    x, t = _point_inputs(session, i)
    inputs, zs, acts, z_out = _run(session, x)
    loss = net.data_loss(z_out, Tensor(t), c["loss"], session.task, session.classes)
    try:
        expl = explain(loss, model=session.model, retain_graph=True)
        index, grads = expl.index, expl.entry_grads

        def grad_of(tensor: Tensor) -> np.ndarray | None:
            entry = index.find(tensor)
            return None if entry is None or entry.index not in grads else np.asarray(grads[entry.index])

        def local_of(a: Tensor, z: Tensor) -> np.ndarray:
            if a is z or a._grad_fn is None:  # an identity activation: a = z
                return np.ones_like(z.data)
            # NOTE: elementwise activations: the rule applied to ones is the Jacobian's diagonal, f'(z)
            return np.asarray(a._grad_fn._vjp(np.ones_like(a.data))[0])

        layers = []
        out_name = _output_name(session)
        for l, layer in enumerate(session.model.layers):
            delta = grad_of(zs[l])
            if delta is None:
                delta = np.zeros_like(zs[l].data)
            if l < len(acts):
                da, local = grad_of(acts[l]), local_of(acts[l], zs[l])
                if da is None:
                    da = np.zeros_like(acts[l].data)
            elif out_name == "linear":
                da, local = delta, np.ones_like(delta)
            else:
                da = local = None
                if c["loss"] == "mse":  # the loss reads p = sigmoid(z) or softmax(z): its gradient is da
                    p_entry = next(
                        (e for e in index.entries if e.op in ("sigmoid", "softmax") and e.inputs
                         and e.inputs[0] == index.find(z_out).index),
                        None,
                    )  # fmt: skip
                    if p_entry is not None and p_entry.index in grads:
                        da = np.asarray(grads[p_entry.index])
                        if p_entry.op == "sigmoid":
                            local = local_of(p_entry.tensor, z_out)
            wg, bg = grad_of(layer.weight), grad_of(layer.bias)
            layers.append(
                {
                    "inputs": inputs[l].data[0],
                    "da": None if da is None else da[0],
                    "local": None if local is None else local[0],
                    "delta": delta[0],
                    "weight_grad": np.zeros_like(layer.weight.data) if wg is None else wg,
                    "bias_grad": np.zeros_like(layer.bias.data) if bg is None else bg,
                }
            )
        return {"loss": float(loss.data), "layers": layers}
    finally:
        session.model.zero_grad()  # explain, like backward, accumulated into .grad: leave training clean


def backward_record(session: Session, i: int) -> dict[str, Any]:
    """The ``backward_step`` message of point ``i``."""
    numbers = backward_numbers(session, i)
    layers = []
    for layer in numbers["layers"]:
        neurons = []
        for j in range(len(layer["delta"])):
            neurons.append(
                {
                    "da": None if layer["da"] is None else net.sig1(float(layer["da"][j])),
                    "local": None if layer["local"] is None else net.sig1(float(layer["local"][j])),
                    "delta": net.sig1(float(layer["delta"][j])),
                    "inputs": net.sig(layer["inputs"]),
                    "weight_grads": net.sig(layer["weight_grad"][j]),
                    "bias_grad": net.sig1(float(layer["bias_grad"][j])),
                }
            )
        layers.append({"neurons": neurons})
    return {"type": "backward_step", "index": i, "loss": net.sig1(numbers["loss"]), "layers": layers}


__all__ = ["backward_numbers", "backward_record", "forward_record"]
