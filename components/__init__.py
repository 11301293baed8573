"""The adiff app's UI: one module per tab (each exposing ``build(ctx)``), pure plotly figure builders
(``figures``), per-session state (``state``), input checks (``validation``) and shared helpers (``common``).
The arrows point one way: app.py -> components -> adiff."""
