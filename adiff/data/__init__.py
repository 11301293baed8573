"""Datasets: made by code (2-D toys, glyphs, drawings), real handwritten digits shipped in assets/, images
uploaded by a user, and Gaussian mixtures with their exact denoisers."""

from .datasets import *  # noqa: F401,F403
from .datasets import __all__ as _datasets_all
from .digits import DIGITS_SIZE, digits_split
from .drawings import *  # noqa: F401,F403
from .drawings import __all__ as _drawings_all
from .fingerprint import data_fingerprint
from .glyphs import GLYPH_SIZE, make_glyphs
from .gmm import GaussianMixture

__all__ = [
    *_datasets_all,
    *_drawings_all,
    "GLYPH_SIZE",
    "make_glyphs",
    "DIGITS_SIZE",
    "digits_split",
    "GaussianMixture",
    "data_fingerprint",
]
