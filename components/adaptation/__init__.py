"""Tab 8, adaptation: layout.py (widgets and wiring), handlers.py (the work), view.py (figures and words),
groups.py (its control groups; the reward picker is shared: components/reward_picker.py)."""

from .layout import build

__all__ = ["build"]
