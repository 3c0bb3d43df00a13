"""One training run from a flat set of options: what ``chainrule train`` and ``chainrule sweep`` both do.

    run = prepare(options)            # data and its split, the model, optimizer, schedule
    history = run.fit(callbacks=[...])
    scores = run.scores()             # {"train": {...}, "val": {...} or absent, "test": {...}}

``options`` is any object with the ``chainrule train`` options as attributes (an argparse
namespace, or ``types.SimpleNamespace(**mapping)``): data, n, noise, test_size, val_size,
split_seed, stratify, standardize, hidden, activation, output_activation, dtype, loss,
optimizer, lr, momentum, nesterov, l2, batch_size, epochs, schedule, patience, seed, compile.
An option combination that cannot run raises ``RunError`` naming the option as the command line
spells it (``--momentum applies to sgd and rmsprop, not adam``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any


class RunError(ValueError):
    """Options that cannot make a run (unknown combination, a data set too small to split)."""


def optimizers_taking(option: str) -> list[str]:
    """The registered optimizers whose constructor has the keyword ``option`` (e.g. "momentum")."""
    from chainrule.optim import OPTIMIZERS

    return [name for name, entry in OPTIMIZERS.items() if option in inspect.signature(entry.cls).parameters]


def load_data(name: str, n: int | None, noise: float | None, seed: int) -> Any:
    """The named data set with the size, noise and seed options it accepts."""
    from chainrule.data import dataset_options, get_dataset

    accepted = dataset_options(name)
    options: dict[str, Any] = {}
    if n is not None:
        if "n" in accepted:
            options["n"] = n
        elif "repeat" in accepted:
            options["repeat"] = n
        else:
            raise RunError(f"--n does not apply to the {name} data set (it has a fixed size)")
    if noise is not None:
        if "noise" not in accepted:
            raise RunError(f"--noise does not apply to the {name} data set")
        options["noise"] = noise
    if "seed" in accepted:
        options["seed"] = seed
    try:
        return get_dataset(name, **options)
    except ValueError as err:  # a generator refusing its options (too few points for its classes, ...)
        raise RunError(f"--data {name}: {err}") from None


def split_data(
    dataset: Any, test_size: float, seed: int, stratify: bool, val_size: float | None
) -> tuple[tuple[Any, Any], tuple[Any, Any] | None, tuple[Any, Any]]:
    """The (X, y) parts of a run: train, validation (None when ``val_size`` is 0) and test.

    ``train`` splits here and ``predict`` rebuilds the same parts from the run's record, so the
    two cannot drift apart. The validation part comes out of the training part, with ``seed + 1``.
    """
    from chainrule.data import train_test_split

    stratify = stratify and dataset.task == "classification"
    if len(dataset) < 2:
        raise RunError(f"the {dataset.name} data set has too few samples to split")
    if dataset.name in ("xor", "and", "or") and len(dataset) == 4:
        # NOTE: a truth table has no samples to spare: train and "test" on the 4 points.
        X_train, X_test, y_train, y_test = dataset.X, dataset.X, dataset.y, dataset.y
    else:
        try:
            X_train, X_test, y_train, y_test = train_test_split(
                dataset.X, dataset.y, test_size=test_size, seed=seed, stratify=stratify
            )
        except ValueError as err:
            raise RunError(str(err)) from None
    if not val_size:
        return (X_train, y_train), None, (X_test, y_test)
    try:
        X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=val_size, seed=seed + 1)
    except ValueError as err:
        raise RunError(f"--val-size: {err}") from None
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


def output_head(options: Any, dataset: Any) -> tuple[str, int, str | None]:
    """(loss, output units, output activation) for the data set and the chosen loss."""
    from chainrule.train.objectives import LOSSES

    loss = options.loss
    if dataset.task == "regression":
        act = options.output_activation
        return "mse", dataset.output_size, None if act in (None, "none") else act
    entry = LOSSES[loss]
    if entry.one_output and dataset.n_classes != 2:
        raise RunError(f"--loss {loss} needs a two-class data set; {dataset.name} has {dataset.n_classes} classes")
    units = 1 if entry.one_output else dataset.n_classes
    act = options.output_activation if options.output_activation is not None else entry.output_activation
    return loss, units, None if act in (None, "none") else act


@dataclass
class Run:
    """Everything one run trains and reports: made by ``prepare``, trained by ``fit``."""

    options: Any
    dataset: Any
    train: tuple[Any, Any]
    validation: tuple[Any, Any] | None
    test: tuple[Any, Any]
    scaler: Any
    model: Any
    optimizer: Any
    scheduler: Any
    loss: str
    lr: float
    sizes: list[int]
    metrics: tuple[str, ...]
    history: Any = None

    @property
    def metric(self) -> str:
        """The score runs are compared by: accuracy, or mse for regression."""
        return self.metrics[0]

    def record(self) -> dict[str, Any]:
        """What ``predict`` needs to rebuild the data split (stored in the model file and metrics.json)."""
        o = self.options
        return {
            "data": self.dataset.name,
            "data_options": self.dataset.options,
            "task": self.dataset.task,
            "loss": self.loss,
            "test_size": o.test_size,
            "split_seed": o.split_seed,
            "stratify": o.stratify,
            "val_size": o.val_size,
            "standardizer": self.scaler.to_dict() if self.scaler else None,
        }

    def fit(self, callbacks: list[Any] = (), progress: bool | None = False, verbose: bool = False) -> Any:
        """Train with ``chainrule.fit`` (early stopping when ``patience`` is set); returns the History."""
        from chainrule.train import EarlyStopping, fit

        o = self.options
        hooks = [EarlyStopping("val_loss", patience=o.patience)] if o.patience else []
        self.history = fit(
            self.model,
            self.loss,
            self.optimizer,
            self.train,
            epochs=o.epochs,
            batch_size=o.batch_size,
            validation=self.validation,
            metrics=self.metrics,
            callbacks=[*hooks, *callbacks],
            seed=o.seed,
            scheduler=self.scheduler,
            progress=progress,
            verbose=verbose,
            compile=o.compile,
        )
        return self.history

    def scores(self) -> dict[str, dict[str, float]]:
        """Loss and metric on each part of the data: "train", "val" (when there is one) and "test"."""
        from chainrule.train import evaluate

        parts = {"train": self.train, "val": self.validation, "test": self.test}
        return {
            name: evaluate(self.model, *part, loss=self.loss, metrics=self.metrics)
            for name, part in parts.items()
            if part is not None
        }


def prepare(options: Any) -> Run:
    """Check the options, load and split the data, and build the model, optimizer and schedule."""
    from chainrule import nn, optim
    from chainrule.data import Standardizer
    from chainrule.train import param_groups

    o = options
    if o.patience is not None and not o.val_size:
        raise RunError("--patience needs a validation set: add --val-size (e.g. 0.1)")
    with_nesterov, with_momentum = optimizers_taking("nesterov"), optimizers_taking("momentum")
    if o.nesterov and (o.optimizer not in with_nesterov or o.momentum <= 0):
        raise RunError(f"--nesterov needs --optimizer {' or '.join(with_nesterov)} and --momentum > 0")
    takes_momentum = o.optimizer in with_momentum
    if o.momentum and not takes_momentum:
        raise RunError(f"--momentum applies to {' and '.join(with_momentum)}, not {o.optimizer}")
    lr = o.lr if o.lr is not None else optim.OPTIMIZERS[o.optimizer].lr

    dataset = load_data(o.data, o.n, o.noise, o.split_seed)
    train, validation, test = split_data(dataset, o.test_size, o.split_seed, o.stratify, o.val_size)
    scaler = None
    if o.standardize:
        scaler = Standardizer().fit(train[0])
        train, test = (scaler.transform(train[0]), train[1]), (scaler.transform(test[0]), test[1])
        if validation is not None:
            validation = (scaler.transform(validation[0]), validation[1])

    loss, units, out_act = output_head(o, dataset)
    sizes = [dataset.n_features, *o.hidden, units]
    model = nn.MLP(sizes, activation=o.activation, output_activation=out_act, dtype=o.dtype, rng=o.seed)
    settings: dict[str, Any] = {"lr": lr}
    if takes_momentum:
        settings["momentum"] = o.momentum
    if o.nesterov:
        settings["nesterov"] = True
    # NOTE: the groups carry their own weight_decay, so AdamW's default decay (1e-2) is off unless --l2 is given.
    optimizer = optim.get_optimizer(o.optimizer, param_groups(model, o.l2), **settings)
    scheduler = None
    if o.schedule == "step":
        scheduler = optim.StepLR(optimizer, step_size=max(1, o.epochs // 3), gamma=0.1)
    elif o.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=o.epochs)
    metrics = ("accuracy",) if dataset.task == "classification" else ("mse",)
    return Run(o, dataset, train, validation, test, scaler, model, optimizer, scheduler, loss, lr, sizes, metrics)


__all__ = ["Run", "RunError", "load_data", "optimizers_taking", "output_head", "prepare", "split_data"]
