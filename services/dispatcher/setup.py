"""Build hook for the compiled part of the dispatcher: the cffi Work Queue binding.

Everything else about the package is declared in pyproject.toml; setuptools
reads both. ``pip install -e services/dispatcher`` compiles ``dp3_dispatcher.workqueue._wq`` in place.
"""

from setuptools import setup

setup(cffi_modules=["src/dp3_dispatcher/workqueue/_build.py:ffibuilder"])
