"""The autodiff core: tensors, the grad mode, the backward walk, user ops, gradient checks, compile.

Module-level imports point one way (docs/architecture.md draws it)::

    backend  <-  grad_mode, tensor  <-  ops  <-  engine, functional  <-  function, gradcheck,
    factories, compile  <-  tensor_methods

``tensor.py`` is the data structure beneath the ops; ``tensor_methods.py``, above everything
else here, gives ``Tensor`` its operators and methods. This package's own ``__init__``
imports nothing, so importing one of its modules never pulls in the rest.
"""
