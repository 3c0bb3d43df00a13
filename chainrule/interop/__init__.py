"""chainrule.interop: hand a model over to PyTorch or to an ONNX runtime.

* ``to_torch(model)`` / ``from_torch(torch_model)``: the same architecture and weights in the
  other engine, with identical ``state_dict()`` keys (``chainrule.interop.torch_bridge``);
* ``to_onnx(model, example_input, path)``: the evaluation-mode forward pass as an ONNX file
  (``chainrule.interop.onnx_export``); ``chainrule export MODEL --onnx OUT`` on the command line.

torch, onnx and onnxruntime are optional (``pip install 'chainrule[interop]'``) and imported
only inside these functions: importing this package needs only NumPy. See docs/interop.md.
"""

from chainrule.interop.onnx_export import build_onnx, to_onnx
from chainrule.interop.torch_bridge import INSTALL_HINT, UnsupportedLayerError, from_torch, to_torch, torch_classes

__all__ = ["INSTALL_HINT", "UnsupportedLayerError", "build_onnx", "from_torch", "to_onnx", "to_torch", "torch_classes"]
