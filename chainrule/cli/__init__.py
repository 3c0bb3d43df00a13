"""The ``chainrule`` command line.

* ``parser``: the argument parser, its checks and ``main`` (the console script's entry point);
* ``commands``: what each command does (``train``, ``predict``, ``datasets``, ``demo``);
* ``demo``: the XOR demo that ``chainrule demo`` runs.
"""

from chainrule.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
