"""Build configuration for the optional C extension; everything else is in pyproject.toml.

``chainrule.backend._speedups`` (the engine's bookkeeping in C) is optional: where it cannot be
compiled, installation goes on and chainrule runs its pure-Python engine.
"""

import numpy
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "chainrule.backend._speedups",
            ["chainrule/backend/_speedups.c"],
            include_dirs=[numpy.get_include()],
            # fused_grad must round every operation as NumPy does: no a * b + c contracted into an FMA
            extra_compile_args=["-ffp-contract=off"],
            optional=True,
        )
    ]
)
