"""Tab 9, train: layout.py (widgets and wiring) and own_layout.py (the own-data row); handlers.py (training),
checkpoints.py (save, load), own_data.py (a drawing or uploaded images as a dataset), follow.py (the controls that
follow the process and the dataset), shared.py (the tab's session state, "my model"'s preview); view.py and
figures.py (what it looks like)."""

from .layout import build

__all__ = ["build"]
