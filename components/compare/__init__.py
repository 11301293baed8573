"""Tab 4, compare: layout.py (widgets and wiring), handlers.py (the work), view.py and figures.py (what it looks
like)."""

from .layout import build

__all__ = ["build"]
