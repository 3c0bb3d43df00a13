"""``chainrule export``: write a saved model as ONNX, for ONNX Runtime and other engines.

    chainrule export runs/digits/model.safetensors --onnx digits.onnx
    chainrule export runs/digits/model.safetensors --onnx digits.onnx --opset 18 --verify

The model file is one written by ``chainrule.save`` (``chainrule train`` writes one); its input
width is read from its first layer. ``--verify`` runs the written file with onnxruntime on
random inputs and prints the largest difference from chainrule's outputs. A missing or corrupt
model file, a missing output folder or a layer without an ONNX form is one line on stderr and
exit status 2; a missing onnx (or onnxruntime, for ``--verify``) is one line naming
``pip install 'chainrule[interop]'`` and exit status 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule.cli.commands import UsageError

VERIFY_ROWS = 64


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the subparsers object ``sub``; its handler is ``export_command``."""
    from chainrule.cli.parser import _count, _Formatter

    command = sub.add_parser(
        "export",
        help="write a saved model as an ONNX file (for ONNX Runtime and other engines)",
        description="Convert a model file written by chainrule.save or 'chainrule train' to ONNX: its\n"
        "evaluation-mode forward pass, input 'input' and output 'output' with a dynamic batch axis.",
        formatter_class=_Formatter,
    )
    command.add_argument("model", type=Path, metavar="MODEL", help="a .safetensors model file written by chainrule")
    command.add_argument("--onnx", type=Path, required=True, metavar="OUT", help="the ONNX file to write (required)")
    command.add_argument("--opset", type=_count(18), default=20, help="ONNX opset version (18 or newer)")
    command.add_argument(
        "--verify",
        action="store_true",
        help=f"run the written file with onnxruntime on {VERIFY_ROWS} random inputs and print the largest "
        "difference from chainrule's outputs",
    )
    command.set_defaults(handler=export_command)
    return command


def input_width(model: Any) -> int:
    """The number of input features, read from the first layer that has one (Linear, Maxout, MLP, BatchNorm1d)."""
    for _, m in model.named_modules():
        for attr in ("sizes", "in_features", "num_features"):
            value = getattr(m, attr, None)
            if value is not None:
                return int(value[0] if attr == "sizes" else value)
    raise UsageError(
        f"cannot tell the input width of this {type(model).__name__}: no Linear, Maxout, MLP or BatchNorm1d "
        "layer; use chainrule.interop.to_onnx(model, example_input, path) from Python"
    )


def export_command(args: argparse.Namespace) -> int:
    import numpy as np

    import chainrule
    from chainrule.interop import UnsupportedLayerError, to_onnx
    from chainrule.io import ModelFileError

    if not args.model.is_file():
        raise UsageError(f"model file not found: {args.model}")
    folder = args.onnx.parent if str(args.onnx.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"--onnx {args.onnx}: the folder {folder} does not exist")
    if args.onnx.resolve() == args.model.resolve():
        raise UsageError(f"--onnx {args.onnx} would overwrite the model file")
    try:
        model = chainrule.load(args.model)
    except ModelFileError as err:
        raise UsageError(str(err)) from None
    width = input_width(model)
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    example = np.random.default_rng(0).normal(size=(VERIFY_ROWS, width)).astype(dtype)
    try:
        path = to_onnx(model, example, args.onnx, opset=args.opset)
    except (UnsupportedLayerError, ValueError) as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot write {args.onnx}: {err}") from None
    model.eval()
    with chainrule.no_grad():
        want = model(chainrule.tensor(example)).data
    shape = ", ".join(["batch", *map(str, want.shape[1:])])
    print(
        f"wrote {path} (ONNX opset {args.opset}): input 'input' [batch, {width}] {dtype} -> "
        f"output 'output' [{shape}]; {path.stat().st_size} bytes"
    )
    if args.verify:
        from chainrule.interop.torch_bridge import require

        ort = require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": example})
        diff, size = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
        print(
            f"onnxruntime {ort.__version__}: max |difference| from chainrule on {VERIFY_ROWS} random inputs: "
            f"{diff:.3g} (largest |output| {size:.3g})"
        )
    return 0


__all__ = ["add_parser", "export_command", "input_width"]
