"""Tab 6, adaptation: layout.py (widgets and wiring), handlers.py (the work), view.py (figures and words),
groups.py and reward_picker.py (its control groups)."""

from .layout import build

__all__ = ["build"]
