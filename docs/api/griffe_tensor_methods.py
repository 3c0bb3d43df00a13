"""A Griffe extension for the API reference: show Tensor's methods on ``chainrule.Tensor``.

``chainrule/autograd/tensor_methods.py`` defines the methods (``backward``, the operators,
``.sum()``, ...) on ``_TensorMethods`` and copies them onto ``Tensor`` when it is imported.
Griffe reads the source without importing it, so it would show ``Tensor`` without them; this
does the same copy on Griffe's model of the package. mkdocs.yml names this file; it is not a page.
"""

from __future__ import annotations

from typing import Any

import griffe


class TensorMethods(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "chainrule":
            return
        methods = pkg["autograd.tensor_methods._TensorMethods"]
        tensor = pkg["autograd.tensor.Tensor"]
        for name, member in list(methods.members.items()):
            if name != "__hash__":  # as attach() does: Tensor keeps its own __hash__
                tensor.set_member(name, member)
