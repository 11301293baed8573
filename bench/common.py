"""Shared helpers for the benchmarks in bench/: environment and thread setup, the machine header, interleaved
side-by-side timing (medians and min-max, paired ratios), model loading for --device/--compile, and tables.

Timing rules on these machines (see STACK.md): two shared cores, so every figure is a ratio of two things timed
in the same run with interleaved repeats; glibc's mmap/trim thresholds are raised (``ensure_malloc_env`` re-executes
the script with them set) because handing ~1 MB tensors back to the OS made some runs 1.3-1.7x slower.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def ensure_malloc_env() -> None:
    """glibc reads its malloc tunables once at start-up, so set them by re-executing this script when they are missing
    (BENCH_NO_REEXEC=1 turns this off)."""
    if all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()) or os.environ.get("BENCH_NO_REEXEC") == "1":
        return
    env = {**os.environ, **MALLOC_ENV}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


ensure_malloc_env()

import torch  # noqa: E402  (after the re-exec, so torch's own allocations see the tunables)


# ------------------------------------------------------------------------------------------------ arguments
def base_parser(doc: str | None, results_name: str | None = None) -> argparse.ArgumentParser:
    """The common flags.  ``results_name``: the script writes its full output to bench/results/<name>.txt (or
    <name>_quick.txt with --quick) unless --out says otherwise (--out - prints only)."""
    ap = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if results_name:
        ap.add_argument(
            "--out",
            default=None,
            help=f"where the full output goes too (default bench/results/{results_name}.txt, "
            f"or {results_name}_quick.txt with --quick; '-' = stdout only)",
        )
        ap.set_defaults(results_name=results_name)
    ap.add_argument("--quick", action="store_true", help="a short run (<= 2 min): fewer repeats / smaller sizes")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the 2 cores are shared and OpenMP collapses when oversubscribed)",
    )
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (cuda runs in bf16 autocast)")
    ap.add_argument(
        "--compile", action="store_true", help="torch.compile the denoiser (compile time is excluded and printed)"
    )
    return ap


class _Tee:
    """Writes to the terminal and to a file at once (the script's full output, kept in bench/results/)."""

    def __init__(self, stream, path: Path):
        self.stream, self.file = stream, open(path, "w", buffering=1)

    def write(self, s):
        self.stream.write(s)
        self.file.write(s)
        return len(s)

    def flush(self):
        self.stream.flush()
        self.file.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def tee_output(args) -> Path | None:
    """With a results name (see base_parser), copy everything printed from now on to the results file."""
    name = getattr(args, "results_name", None)
    if not name or args.out == "-":
        return None
    path = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{name}{'_quick' if args.quick else ''}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout = _Tee(sys.stdout, path)
    return path


def setup(args) -> torch.device:
    """Threads and device from the common flags (and the results file, see tee_output); exits with a clear message
    when CUDA is asked for and absent."""
    tee_output(args)
    torch.set_num_threads(max(1, int(args.threads)))
    dev = str(args.device)
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            sys.exit(
                f"error: --device {dev} was asked for, but torch {torch.__version__} sees no CUDA GPU on this "
                f"machine (torch.cuda.is_available() is False); run on a GPU machine with a CUDA build of torch"
            )
        return torch.device(dev)
    if dev != "cpu":
        sys.exit(f"error: --device must be cpu, cuda or cuda:N, got {dev!r}")
    return torch.device("cpu")


def precision_for(device: torch.device) -> str:
    return "bf16" if device.type == "cuda" else "fp32"


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ machine
def _cpu_ticks() -> dict[int, tuple[int, str]]:
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(p.name)] = (int(fields[11]) + int(fields[12]), cmd)
    return out


def busy_processes(interval: float = 1.0, min_pct: float = 10.0) -> list[str]:
    """Other processes that used >= min_pct of one core over ``interval`` seconds (Linux /proc), busiest first."""
    if not Path("/proc/self/stat").exists():
        return []
    hz = os.sysconf("SC_CLK_TCK")
    a = _cpu_ticks()
    time.sleep(interval)
    b = _cpu_ticks()
    me = os.getpid()
    rows = []
    for pid, (ticks, cmd) in b.items():
        if pid == me or pid not in a or not cmd:
            continue
        pct = 100.0 * (ticks - a[pid][0]) / hz / interval
        if pct >= min_pct:
            rows.append((pct, f"{pct:.0f}% pid {pid}: {' '.join(cmd.split())[:110]}"))
    return [r for _, r in sorted(rows, reverse=True)]


def code_version() -> str:
    """The checked-out commit (read-only git), with '+changes' when adiff/, components/ or app.py differ from it."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "adiff", "components", "app.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def machine_info(device=None) -> dict[str, Any]:
    device = torch.device(device or "cpu")
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "malloc_env": all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["loadavg"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return info


def print_header(title: str, device, args, extra: dict | None = None) -> dict:
    info = machine_info(device)
    info["command"] = "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    info["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    info["code"] = code_version()
    info.update(extra or {})
    print(f"== {title} ==")
    for k, v in info.items():
        print(f"  {k:>10}: {v}")
    busy = busy_processes()
    print("  also running (>=10% of a core over 1 s): " + ("; ".join(busy) if busy else "nothing"))
    sys.stdout.flush()
    return info


def print_footer() -> None:
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    busy = busy_processes()
    print(f"\nat the end: loadavg {load}; also running: " + ("; ".join(busy) if busy else "nothing"))


class Transcript:
    """Prints each line and keeps it, so that a run's whole output can be written to bench/results/<name>.txt."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, name: str) -> Path:
        path = ROOT / "bench" / "results" / f"{name}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n")
        print(f"wrote {path}")
        return path


def config_overrides(cls, pairs: list[str]) -> dict:
    """["key=value", ...] -> {key: value} typed like the dataclass ``cls``'s defaults (for --set options)."""
    out = {}
    for kv in pairs:
        k, _, v = kv.partition("=")
        default = getattr(cls, k)
        out[k] = v == "True" if isinstance(default, bool) else type(default)(v)
    return out


# ------------------------------------------------------------------------------------------------ timing
def interleaved(
    cases: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: dict[str, Callable] | None | bool = True,
    device=None,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """Time each case ``repeats`` times, round-robin (the order reverses every round, so drift hits all cases alike).
    ``warmup``: True runs every case once untimed first; a dict gives cheaper warm-up callables; False/None none.
    Returns name -> list of seconds (one per round, same round index = measured side by side)."""
    names = list(cases)
    if warmup is True:
        warmup = cases
    for name, fn in (warmup or {}).items():
        fn()
        sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            gc.collect()
            sync(device)
            t0 = time.perf_counter()
            cases[n]()
            sync(device)
            times[n].append(time.perf_counter() - t0)
        if verbose:
            print(f"    round {r + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in names), flush=True)
    return times


def lockstep(makers: dict[str, Callable[[], Any]], device=None, per_step: dict | None = None) -> dict[str, float]:
    """Advance several iterators (e.g. samplers' step generators) one step each in turn, rotating who goes first,
    timing every ``next``: all of them see the same machine load at the same moment.  makers: name -> a function
    returning a fresh iterator (its creation is timed too).  Returns name -> total seconds.  ``per_step``: a dict
    that receives, per name, the list of every step's seconds (the iterator's creation counts into its first step)."""
    end = object()
    times = {k: 0.0 for k in makers}
    first = dict(times)
    its = {}
    for k, f in makers.items():
        t0 = time.perf_counter()
        its[k] = iter(f())
        first[k] = time.perf_counter() - t0
        times[k] += first[k]
    live, r = list(its), 0
    while live:
        j = r % len(live)
        for k in live[j:] + live[:j]:
            sync(device)
            t0 = time.perf_counter()
            v = next(its[k], end)
            sync(device)
            dt = time.perf_counter() - t0
            times[k] += dt
            if v is end:
                live.remove(k)
            elif per_step is not None:
                per_step.setdefault(k, []).append(dt + first[k])
                first[k] = 0.0
        r += 1
    return times


def step_ratio(per_step: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """Per-step paired ratios a/b of lockstep step times (step i of a against step i of b, measured at the same
    moment): (median, min, max).  The median is robust to load bursts that hit a few steps of a whole run."""
    return stats([x / y for x, y in zip(per_step[a], per_step[b])])


def stats(xs: list[float]) -> tuple[float, float, float]:
    """(median, min, max)"""
    return statistics.median(xs), min(xs), max(xs)


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """Per-round ratios a/b (each pair measured side by side): (median, min, max)."""
    return stats([x / y for x, y in zip(times[a], times[b])])


def fmt_stats(s: tuple[float, float, float], unit: str = "", scale: float = 1.0, digits: int = 3) -> str:
    m, lo, hi = (v * scale for v in s)
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def print_table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    cols = [[str(h)] + [str(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in col) for col in cols]
    if title:
        print(f"\n{title}")
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------ models
def load_model(name: str, device: torch.device, compile: bool = False):
    """A private copy of a preset on ``device`` (bf16 autocast on CUDA, fp32 on CPU); with ``compile`` its EMA
    denoiser (what sampling uses) is wrapped in torch.compile (it compiles lazily, on the first call)."""
    from adiff.model import DiffusionModel
    from adiff.presets import load_preset

    base = load_preset(name, device="cpu")
    model = DiffusionModel({**base.config, "device": str(device), "precision": precision_for(device)})
    model.load_state_dict(base.get_state_dict())
    model.denoiser.eval()
    if compile:
        model.ema.module = torch.compile(model.ema.module)
    return model


def flow_twin(model):
    """A rectified-flow DiffusionModel (velocity prediction) with ``model``'s architecture, on its device, never trained
    as a flow: the flow stand-in for timing and parity while no flow preset ships (a network's cost does not depend on
    its weights).  It carries ``model``'s weights, read as a velocity network: a fresh network outputs exactly zero
    (its last layer starts at zero), which would make every flow solver return x_1 unchanged; these weights give a
    smooth non-zero function of (x, t) instead.  It is not a good flow model of the data."""
    from adiff.model import DiffusionModel

    cfg = model.cfg.replace(process="flow", prediction_type="velocity", num_diffusion_steps=None, beta_range=None)
    twin = DiffusionModel(cfg)
    for src, dst in ((model.denoiser, twin.denoiser), (model.ema.module, twin.ema.module)):
        dst.load_state_dict(getattr(src, "_orig_mod", src).state_dict())
    twin.denoiser.eval()
    return twin


def mean_se(xs) -> tuple[float, float]:
    """(mean, standard error of the mean) of a list of numbers (SE 0 for a single value)."""
    xs = list(xs)
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, statistics.stdev(xs) / len(xs) ** 0.5


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    ok = value <= target if lower_is_better else value >= target
    return "met" if ok else "NOT met"
