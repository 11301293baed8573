"""The sampling engine: dynamic batching of network calls across concurrent sampling runs (no UI).

from adiff.serving import SamplingEngine
engine = SamplingEngine(max_wait_ms=5, max_rows=8192)
with engine.session(model) as net:                       # one per run, in the run's thread
    for rec in model.generate_progressive(500, seed=1, network=net):
        ...
"""

from .batch import Network
from .engine import EngineStats, SamplingEngine
from .session import EngineSession, RunCancelled

__all__ = ["SamplingEngine", "EngineStats", "EngineSession", "RunCancelled", "Network"]
