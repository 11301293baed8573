"""What the app benches call it with: keyword calls with the endpoint's own defaults, a timed streamed /generate,
percentiles.  Used by bench_app.py and workshop.py (kept here so that neither imports the other)."""

from __future__ import annotations

import time

REQUIRED = ("/generate", "/schedule_curves")


class Api:
    """Keyword calls with the endpoint's own defaults (from view_api) for whatever is not given."""

    def __init__(self, client):
        self.client = client
        info = client.view_api(return_format="dict", print_info=False)
        self.endpoints = {
            name: [p["parameter_name"] for p in ep["parameters"]] for name, ep in info["named_endpoints"].items()
        }
        missing = [e for e in REQUIRED if e not in self.endpoints]
        if missing:
            raise SystemExit(f"error: the app exposes no {missing} endpoint(s); it has {sorted(self.endpoints)}")

    def kwargs(self, endpoint: str, **given) -> dict:
        names = self.endpoints[endpoint]
        unknown = [k for k in given if k not in names]
        if unknown:
            raise SystemExit(f"error: {endpoint} has no parameter(s) {unknown}; its parameters are {names}")
        return given

    def submit(self, endpoint: str, **given):
        return self.client.submit(api_name=endpoint, **self.kwargs(endpoint, **given))

    def predict(self, endpoint: str, **given):
        return self.client.predict(api_name=endpoint, **self.kwargs(endpoint, **given))


def timed_generate(api: Api, **inputs) -> dict:
    """Submit /generate and read its stream: seconds to the first update and to the end, updates, final status."""
    t0 = time.perf_counter()
    job = api.submit("/generate", **inputs)
    first, n, last = None, 0, None
    for out in job:
        n += 1
        last = out
        if first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    outs = job.outputs()
    final = outs[-1] if outs else last
    status = final[2] if isinstance(final, (list, tuple)) and len(final) > 2 else None
    ok = isinstance(status, dict) and status.get("status") == "done"
    return {"first": first, "total": total, "updates": max(n, len(outs)), "ok": ok, "status": status}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
