"""Build hook for the compiled part of dp3: the cffi Work Queue binding.

Everything else about the package is declared in pyproject.toml; setuptools
reads both. ``pip install -e libs/dp3`` compiles ``dp3.workqueue._wq`` in place.
"""

from setuptools import setup

setup(cffi_modules=["src/dp3/workqueue/_build.py:ffibuilder"])
