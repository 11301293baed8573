"""Tab 5, the learned density: layout.py (widgets and wiring), handlers.py (the work), view.py (what it looks like),
lessons.py (its prompts as checked records)."""

from .layout import build

__all__ = ["build"]
