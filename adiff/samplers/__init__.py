"""Reverse-time solvers and the progressive sampling loop."""
from .loop import *  # noqa: F401,F403
from .loop import __all__  # noqa: F401
