"""chainrule.nn: layers, losses and initializers built on chainrule's differentiable ops.

A model is a ``Module`` whose ``Parameter`` attributes (and those of its submodules)
are found by ``parameters()``; layers are composed from the engine's ops, so every
gradient comes from backpropagation through the graph::

    import chainrule as cr
    from chainrule import nn

    model = nn.MLP([784, 25, 10], activation="sigmoid")
    loss = nn.functional.cross_entropy(model(x), labels) + nn.functional.l2_penalty(model, 1.0, m=len(x))
    loss.backward()

Conventions (weight layout, losses, L2 penalties, initialization) are in docs/nn.md.
"""

from chainrule.nn import functional, init, losses
from chainrule.nn.activation import (
    ELU,
    GELU,
    Flatten,
    Identity,
    LeakyReLU,
    LogSoftmax,
    PReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    make_activation,
)
from chainrule.nn.constructions import (
    Perceptron,
    PerceptronResult,
    Sign,
    Step,
    approximate_1d,
    from_truth_table,
    perceptron_train,
    pulse,
    xor_network,
)
from chainrule.nn.container import ModuleList, Sequential
from chainrule.nn.dropout import Dropout
from chainrule.nn.linear import MLP, Linear, Maxout
from chainrule.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HingeLoss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
)
from chainrule.nn.module import (
    IncompatibleKeys,
    Module,
    Parameter,
    StateDictKeyError,
    from_config,
    register_module,
)
from chainrule.nn.norm import BatchNorm1d
from chainrule.nn.pooling import LogAvgPool, LPPool

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "Flatten",
    "GELU",
    "HingeLoss",
    "Identity",
    "IncompatibleKeys",
    "LPPool",
    "LeakyReLU",
    "Linear",
    "LogAvgPool",
    "LogSoftmax",
    "MLP",
    "MSELoss",
    "Maxout",
    "Module",
    "ModuleList",
    "MultiMarginLoss",
    "NLLLoss",
    "PReLU",
    "Parameter",
    "Perceptron",
    "PerceptronResult",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Sign",
    "Softmax",
    "Softplus",
    "StateDictKeyError",
    "Step",
    "Tanh",
    "approximate_1d",
    "from_config",
    "from_truth_table",
    "functional",
    "init",
    "losses",
    "make_activation",
    "perceptron_train",
    "pulse",
    "register_module",
    "xor_network",
]
