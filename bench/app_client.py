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


def load_client(url: str, http_timeout: float | None = None):
    """A gradio_client Client as cheap to run as we can make it, for load that shares the app's cores: the app is
    plain HTTP on loopback, so no certificate store is read (gradio_client opens a new httpx client, with a fresh
    SSL context that loads certifi's bundle unless verification is off, for every call: about 10 ms of CPU each)."""
    from gradio_client import Client

    kwargs = {} if http_timeout is None else {"timeout": http_timeout}
    return Client(url, verbose=False, ssl_verify=False, httpx_kwargs=kwargs)


POLL_S = 0.01  # how often a load client looks for a new streamed update (see ``updates``)


def updates(job, poll: float = POLL_S):
    """A streamed job's updates as they arrive, like ``for out in job`` but without its busy wait: gradio_client's
    ``Job.__next__`` polls every 1 ms under a lock, so thirty load threads on the app's own two cores burn about a
    core between them (31 CPU-s in one workshop run, against the app's 44) and the bench measured its own clients.
    Looking every ``poll`` seconds adds at most ``poll`` to a first-update time."""
    seen = 0
    while True:
        done = job.done()  # read before the outputs: whatever was appended before it finished is then in the list
        outs = job.outputs()
        if len(outs) > seen:
            yield from outs[seen:]
            seen = len(outs)
        elif done:
            return
        else:
            time.sleep(poll)


def timed_generate(api: Api, **inputs) -> dict:
    """Submit /generate and read its stream: seconds to the first update and to the end, updates, final status."""
    t0 = time.perf_counter()
    job = api.submit("/generate", **inputs)
    first, n, last = None, 0, None
    for out in updates(job):
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
