"""Seeing backpropagation: ``draw`` the computational graph, ``explain`` the backward pass.

* ``draw(t)`` -> ``Graph``: one node per op and per leaf, each with its value (green) and,
  after backward, its gradient (red); ``Graph.source`` is the DOT text, ``Graph.render(path)``
  runs Graphviz's ``dot`` (only needed for images).
* ``explain(t)`` -> ``Explanation``: runs backward once and records every step the engine
  runs (upstream, local and downstream gradients, branch sums, notes at kinks and ties).

Needs NumPy only; rendering images needs the Graphviz program ``dot`` (``apt-get install graphviz``).
"""

from chainrule.viz.explain import Explanation, Step, StepInput, explain
from chainrule.viz.graph import Graph, draw

__all__ = ["Explanation", "Graph", "Step", "StepInput", "draw", "explain"]
