"""Plots of training and of trained models, drawn with matplotlib's Agg backend (PNG or SVG).

    fig = plot_history(history, path="runs/digits/history.png")
    plot_decision_regions(model, X, y, path="regions.svg")

Every function returns a ``matplotlib.figure.Figure`` and, given ``path=``, also writes it:
the format comes from the suffix (.png or .svg), the image is written to a temporary file in
the same folder and renamed into place, so a reader never sees half a file. Figures are made
with ``Figure`` and ``FigureCanvasAgg`` directly, never through ``pyplot``: no global figure
list, no GUI backend, nothing to close. Sizes are fixed (in inches, at ``DPI`` = 100 pixels per
inch for PNG) and SVGs carry no date and a fixed id salt, so the same input gives the same file.

matplotlib is imported inside the functions: ``import chainrule`` needs only NumPy, and a
missing matplotlib is an ``ImportError`` naming ``pip install 'chainrule[viz]'``.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.nn.activation import ACTIVATIONS, make_activation
from chainrule.train.diagnostics import diagnostics_records
from chainrule.train.loop import predict

#: pixels per inch of the PNGs
DPI = 100
FORMATS = ("png", "svg")
INSTALL_HINT = "pip install 'chainrule[viz]'"

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
CLASS_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


# ===================================================================== figures and files
def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"chainrule's plots need matplotlib: {INSTALL_HINT}") from None
    return matplotlib, Figure, FigureCanvasAgg


def new_figure(width: float, height: float) -> Any:
    """A ``Figure`` of ``width`` x ``height`` inches on an Agg canvas, with constrained layout."""
    _, Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_format(path: str | os.PathLike[str]) -> str:
    """ "png" or "svg" from the file's suffix; anything else is a ValueError."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the image format of {os.fspath(path)!r}: use a .png or .svg file name")
    return fmt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` (.png or .svg) through a temporary file renamed into place."""
    matplotlib, _, _ = _matplotlib()
    path = Path(path)
    fmt = plot_format(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    metadata = {"Date": None} if fmt == "svg" else {}
    try:
        with matplotlib.rc_context({"svg.hashsalt": "chainrule"}):
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _done(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        save_figure(fig, path)
    return fig


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ===================================================================== training history
def _history_dict(history: Any) -> dict[str, Any]:
    if hasattr(history, "to_dict"):
        return history.to_dict()
    if isinstance(history, Mapping):
        inner = history.get("history")
        return dict(inner) if isinstance(inner, Mapping) else dict(history)
    raise TypeError(f"plot_history: expected a History or its to_dict(), got {type(history).__name__}")


def plot_history(history: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Loss and the first metric (accuracy, mse or mae) per epoch, training and validation. 9 x 3.6 in."""
    h = _history_dict(history)
    loss = h.get("loss") or []
    epochs = h.get("epochs") or list(range(1, len(loss) + 1))
    metric = next((k for k in ("accuracy", "mse", "mae") if h.get(k)), None)
    if metric is not None and metric != "accuracy" and np.allclose(h[metric], loss, equal_nan=True):
        metric = None  # mse of a model trained on mse: the same curve twice
    fig = new_figure(9, 3.6)
    axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]
    panels = [("loss", "loss"), *([(metric, metric)] if metric else [])]
    for ax, (key, label) in zip(axes, panels):
        ax.plot(epochs, h.get(key) or [], "o-", ms=3, color=CLASS_COLORS[0], label="training")
        if h.get(f"val_{key}"):
            ax.plot(epochs, h[f"val_{key}"], "s--", ms=3, color=CLASS_COLORS[1], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label} per epoch")
        ax.grid(alpha=0.3)
        _integer_epochs(ax)
        ax.legend()
    if h.get("stopped_epoch"):
        axes[0].axvline(h["stopped_epoch"], color="grey", ls=":", lw=1)
    return _done(fig, path)


# ===================================================================== models on their data
def predicted_labels(outputs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class labels from model outputs: the argmax of several, ``output > threshold`` for one."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    return (outputs.reshape(-1) > threshold).astype(np.int64)


def _padded_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def plot_decision_regions(
    model: Any,
    X: Any,
    y: Any,
    threshold: float = 0.5,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    resolution: int = 200,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The class a 2-D classifier predicts at each point of the plane, with the points ``(X, y)``. 5.5 x 5 in.

    Several outputs: the argmax; one output: class 1 where it exceeds ``threshold`` (0.5 for a
    sigmoid, 0 for raw scores). ``transform`` maps plane coordinates to the model's inputs
    (e.g. a ``Standardizer``'s ``transform``), so the plot keeps the data's own axes.
    """
    from matplotlib.colors import ListedColormap

    X, y = np.asarray(X, dtype=np.float64), np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_regions: X must have shape (n, 2), got {X.shape}")
    (x0, x1), (y0, y1) = _padded_range(X[:, 0]), _padded_range(X[:, 1])
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    regions = predicted_labels(predict(model, transform(grid) if transform else grid), threshold).reshape(gx.shape)
    n = int(max(regions.max(), y.max() if y.size else 0)) + 1
    colors = [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(n)]
    fig = new_figure(5.5, 5)
    ax = fig.subplots()
    ax.imshow(
        regions,
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=n - 0.5,
        alpha=0.25,
        interpolation="nearest",
        aspect="auto",
    )
    if regions.min() != regions.max():
        ax.contour(gx, gy, regions, levels=np.arange(n) + 0.5, colors="0.25", linewidths=0.8)
    for c in range(n):
        mask = y == c
        if mask.any():
            ax.scatter(*X[mask].T, s=16, color=colors[c], edgecolors="white", linewidths=0.4, label=f"class {c}")
    accuracy = float(np.mean(predicted_labels(predict(model, transform(X) if transform else X), threshold) == y))
    ax.set_title(f"decision regions ({len(y)} points, accuracy {accuracy:.3f})")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    return _done(fig, path)


def plot_regression_fit(
    model: Any,
    X: Any,
    y: Any,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """A 1-D regression model's curve over its data points. 6 x 4 in."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"plot_regression_fit: X must have shape (n, 1), got {X.shape}")
    lo, hi = _padded_range(X[:, 0])
    grid = np.linspace(lo, hi, 400).reshape(-1, 1)
    curve = predict(model, transform(grid) if transform else grid).reshape(len(grid), -1)[:, 0]
    fitted = predict(model, transform(X) if transform else X).reshape(len(X), -1)[:, 0]
    mse = float(np.mean((fitted - y.reshape(len(y), -1)[:, 0]) ** 2))
    fig = new_figure(6, 4)
    ax = fig.subplots()
    ax.scatter(X[:, 0], y.reshape(len(y), -1)[:, 0], s=12, color=CLASS_COLORS[0], alpha=0.7, label="data")
    ax.plot(grid[:, 0], curve, color=CLASS_COLORS[5], lw=2, label="model")
    ax.set_title(f"regression fit ({len(X)} points, mse {mse:.4g})")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)
    ax.legend()
    return _done(fig, path)


def _weight_layers(model: Any) -> list[tuple[str, np.ndarray]]:
    """(name, weight array) of every module with a 2-D ``weight`` (Linear, Maxout), in model order."""
    found = []
    modules = model.named_modules() if hasattr(model, "named_modules") else [("", model)]
    for name, module in modules:
        weight = module.__dict__.get("_parameters", {}).get("weight")
        if weight is not None and weight.ndim == 2:
            found.append((name or type(module).__name__, np.asarray(weight.data)))
    return found


def weights_grid(model: Any) -> tuple[int, int]:
    """(rows, columns) of ``plot_weights``' panels: up to 3 per row."""
    n = max(1, len(_weight_layers(model)))
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def plot_weights(model: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Each weight matrix as a heatmap (rows: output units, columns: inputs; red > 0 > blue).

    Up to three panels per row, each 3.8 x 3.2 in.
    """
    layers = _weight_layers(model)
    if not layers:
        raise ValueError(f"plot_weights: {type(model).__name__} has no module with a 2-D weight")
    rows, cols = weights_grid(model)
    fig = new_figure(3.8 * cols, 3.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, W) in zip(axes, layers):
        limit = float(np.max(np.abs(W))) or 1.0
        image = ax.imshow(W, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
        ax.set_title(f"{name}.weight  {W.shape[0]}×{W.shape[1]}", fontsize=10)
        ax.set_xlabel("input unit")
        ax.set_ylabel("output unit")
        fig.colorbar(image, ax=ax, shrink=0.9)
    for ax in axes[len(layers) :]:
        ax.set_axis_off()
    return _done(fig, path)


def plot_first_layer_images(
    model: Any, image_shape: Sequence[int] = (8, 8), max_units: int = 64, path: str | os.PathLike[str] | None = None
) -> Any:
    """The first layer's incoming weights of each hidden unit, drawn as an image (digit models). 6.4 x 6.8 in.

    Each unit is scaled to its own largest |weight|: red pixels excite the unit, blue inhibit it.
    """
    layers = _weight_layers(model)
    if not layers:
        raise ValueError(f"plot_first_layer_images: {type(model).__name__} has no module with a 2-D weight")
    name, W = layers[0]
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or int(np.prod(shape)) != W.shape[1]:
        raise ValueError(f"plot_first_layer_images: {name} takes {W.shape[1]} inputs, not an image of shape {shape}")
    units = min(len(W), int(max_units))
    cols = math.ceil(math.sqrt(units))
    rows = math.ceil(units / cols)
    # NOTE: one mosaic image (NaN gaps one pixel wide) instead of one axes per unit: 64 axes take
    # matplotlib about a second to lay out, one image a few milliseconds.
    h, w = shape
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for j in range(units):
        limit = float(np.max(np.abs(W[j]))) or 1.0
        r, c = divmod(j, cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = W[j].reshape(shape) / limit
    fig = new_figure(6.4, 6.8)
    ax = fig.subplots()
    matplotlib, _, _ = _matplotlib()
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.55")  # grey gaps between the units
    ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    shown = f"{units} of {len(W)}" if units < len(W) else f"all {units}"
    ax.set_title(f"{name}.weight: incoming weights of {shown} units as {h}×{w} images", fontsize=10)
    return _done(fig, path)


def plot_confusion_matrix(
    counts: Any, labels: Sequence[str] | None = None, path: str | os.PathLike[str] | None = None
) -> Any:
    """Counts[i, j] = samples of true class i predicted as j, each cell labelled with its count. 5.5 x 5 in."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"plot_confusion_matrix: counts must be a square matrix, got shape {counts.shape}")
    n = len(counts)
    labels = [str(i) for i in range(n)] if labels is None else [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"plot_confusion_matrix: {len(labels)} labels for {n} classes")
    total = int(counts.sum())
    correct = int(np.trace(counts))
    fig = new_figure(5.5, 5)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(1, int(counts.max())), interpolation="nearest")
    size = 9 if n <= 10 else max(5, 9 - (n - 10) // 3)
    for i in range(n):
        for j in range(n):
            value = int(counts[i, j])
            dark = value > 0.5 * counts.max()
            ax.text(j, i, str(value), ha="center", va="center", fontsize=size, color="white" if dark else "black")
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = correct / total if total else float("nan")
    ax.set_title(f"confusion matrix ({total} samples, accuracy {accuracy:.3f})", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.85)
    return _done(fig, path)


# ===================================================================== activations
def activation_curves(x: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (x, f(x), f'(x)) for each activation in ``ACTIVATIONS`` (one name per class).

    f' is what chainrule's backward computes: x.grad after ``f(x).sum().backward()``
    (each output depends only on its own input, so the sum's gradient is the derivative).
    """
    x = np.linspace(-4.0, 4.0, 801) if x is None else np.asarray(x, dtype=np.float64)
    curves = {}
    seen: set[type] = set()
    for name, cls in ACTIVATIONS.items():
        if cls in seen:
            continue
        seen.add(cls)
        inputs = Tensor(x.copy(), requires_grad=True)
        out = make_activation(name, dtype=np.float64)(inputs)
        out.sum().backward()
        curves[name] = (x, np.asarray(out.data, dtype=np.float64), np.asarray(inputs.grad, dtype=np.float64))
    return curves


def plot_activation_gallery(path: str | os.PathLike[str] | None = None) -> Any:
    """Each activation f (solid) and its derivative f' from chainrule's backward (dashed). 9.6 x 8 in."""
    curves = activation_curves()
    cols = 3
    rows = math.ceil(len(curves) / cols)
    fig = new_figure(9.6, 8)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, (x, f, df)) in zip(axes, curves.items()):
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.plot(x, f, color=CLASS_COLORS[0], lw=2, label="f(x)")
        ax.plot(x, df, color=CLASS_COLORS[5], lw=1.6, ls="--", label="f′(x)")
        ax.set_title(name)
        ax.set_ylim(-1.6, 4.2)
        ax.grid(alpha=0.3)
    for ax in axes[len(curves) :]:
        ax.set_axis_off()
    axes[0].legend(loc="upper left", fontsize=9)
    return _done(fig, path)


# ===================================================================== diagnostics
def _depth_colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.85 * i / max(1, n - 1)) for i in range(n)]


def _short(name: str) -> str:
    return name.removesuffix(".weight")


def _series(records: list[dict[str, Any]], section: str, name: str, key: str, positive: bool = False) -> np.ndarray:
    values = []
    for r in records:
        v = r.get(section, {}).get(name, {}).get(key)
        values.append(np.nan if v is None or (positive and v <= 0) else float(v))
    return np.asarray(values, dtype=np.float64)


def plot_diagnostics(records: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """The ``Diagnostics`` records over epochs, in six panels. 12 x 7 in.

    Gradient norm, update/weight ratio and weight norm of each weight matrix, dead ReLU
    fraction, saturated sigmoid/tanh fraction and mean activation of each activation layer.
    Colour encodes depth: the first layer dark purple, the last yellow (viridis).
    ``records``: a ``Diagnostics``, its ``to_dict()``, a metrics.json dict, or the list of records.
    """
    from matplotlib.lines import Line2D

    records = diagnostics_records(records)
    if not records:
        raise ValueError("plot_diagnostics: no records (was the Diagnostics callback given to fit?)")
    epochs = [r["epoch"] for r in records]
    weights = [n for n in records[0]["parameters"] if n.endswith("weight")] or list(records[0]["parameters"])
    acts = list(records[0]["activations"])
    kinds = {n: records[0]["activations"][n]["kind"] for n in acts}
    fig = new_figure(12, 7)
    axes = fig.subplots(2, 3).ravel()
    wcol, acol = _depth_colors(len(weights)), _depth_colors(len(acts))

    def lines(ax: Any, names: list[str], colors: list[Any], section: str, key: str, log: bool) -> bool:
        drawn = False
        for name, color in zip(names, colors):
            values = _series(records, section, name, key, positive=log)
            if np.isfinite(values).any():
                ax.plot(epochs, values, "o-", ms=3, color=color, label=_short(name))
                drawn = True
        if log and drawn:
            ax.set_yscale("log")
        return drawn

    panels = [
        (axes[0], weights, wcol, "parameters", "grad_norm", True, "gradient norm ‖∂L/∂W‖ (batch mean)"),
        (axes[1], weights, wcol, "parameters", "update_ratio", True, "update / weight  ‖ΔW‖/‖W‖  (dotted: 1e-3)"),
        (axes[2], weights, wcol, "parameters", "weight_norm", False, "weight norm ‖W‖"),
        (axes[3], [a for a in acts if kinds[a] == "relu"], acol, "activations", "dead_fraction", False, ""),
        (
            axes[4],
            [a for a in acts if kinds[a] in ("sigmoid", "tanh")],
            acol,
            "activations",
            "saturated_fraction",
            False,
            "",
        ),
        (axes[5], acts, acol, "activations", "mean", False, "mean activation"),
    ]
    titles = {3: "dead ReLU units (fraction)", 4: "saturated sigmoid/tanh outputs (fraction)"}
    empty = {3: "no ReLU layers", 4: "no sigmoid or tanh layers", 5: "no activation layers"}
    for i, (ax, names, colors, section, key, log, title) in enumerate(panels):
        colors = [colors[acts.index(n)] for n in names] if section == "activations" else colors
        drawn = lines(ax, names, colors, section, key, log)
        ax.set_title(titles.get(i, title), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        _integer_epochs(ax)
        if i in (3, 4):
            ax.set_ylim(-0.03, 1.03)
        if not drawn:
            ax.text(
                0.5, 0.5, empty.get(i, "not recorded"), ha="center", va="center", transform=ax.transAxes, color="0.4"
            )
            ax.set_xticks([])
            ax.set_yticks([])
    # one legend per row, outside the panels, so no curve is hidden behind it
    for row, (names, colors) in enumerate([(weights, wcol), (acts, acol)]):
        handles = [Line2D([], [], color=c, marker="o", ms=3, label=_short(n)) for n, c in zip(names, colors)]
        if handles:
            where = "outside right upper" if row == 0 else "outside right lower"
            fig.legend(
                handles=handles,
                loc=where,
                fontsize=7,
                title="weights" if row == 0 else "activations",
                title_fontsize=8,
                ncol=1 if len(handles) <= 14 else 2,
            )
    if axes[1].get_lines():
        axes[1].axhline(1e-3, color="0.5", ls=":", lw=1)
    axes[5].axhline(0, color="0.5", ls=":", lw=1)
    return _done(fig, path)


__all__ = [
    "DPI",
    "FORMATS",
    "activation_curves",
    "new_figure",
    "plot_activation_gallery",
    "plot_confusion_matrix",
    "plot_decision_regions",
    "plot_diagnostics",
    "plot_first_layer_images",
    "plot_format",
    "plot_history",
    "plot_regression_fit",
    "plot_weights",
    "predicted_labels",
    "save_figure",
    "weights_grid",
]
