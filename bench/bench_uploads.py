"""Hostile uploads: what each one costs the app (issue 14, findings 1-5), this code and optionally a baseline side by
side.

    python bench/bench_uploads.py [--baseline DIR]

Starts `python app.py --device cpu --max-heavy-jobs 2` (one torch thread per job on 2 cores) as a process of its own on 127.0.0.1 (and the app.py of
``--baseline``, e.g. the code before the fix from `git archive`, one after the other), loads one valid checkpoint
(warm-up), then uploads each hostile file of tests/hostile_files.py through gradio_client's /load_model (and a drawing and
image uploads through /use_drawing and /use_images, issue 15's own-data routes) and reports
the app's resident memory before and after (VmRSS), its peak (VmHWM, from /proc/PID/status), the seconds the call
took and the first part of the answer.  The target: no refused upload leaves more than 50 MB behind.  Then, on this
code only, two models at 84% of the upload budget's FLOPs (a 2-D one and a 256-token image one) are uploaded and the
whole /load_model (load and preview) is timed: the budget is meant to keep that within a few seconds.  Last, issue
23's archives against the library alone (adiff.data.uploads of this code and of ``--baseline``, each case in a fresh
process of its own, interleaved): the refusal's time (median of 3), the process's resident memory before and after
and its peak (VmHWM, reset just before the call through /proc/self/clear_refs), and the size of the answer (the
message, or what an accepted upload's summary would show).  The report is also written to
bench/results/bench_uploads.txt (--out).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_soak import Tee
from common import MALLOC_ENV, ROOT, print_footer, print_header, print_table

LEFT_BEHIND_MB = 50.0
# Not sent to a baseline: the code before the fix builds what these describe (2 x 181 G and 4 x 410 M parameters);
# once here the kernel killed that app outright (it died with no message) and memory pressure reaches every
# process on a shared machine.
BUILD_WOULD_KILL = ("largest config: hidden 8192, 64 layers", "num_classes 100000, embedding 4096")


def timed_previews(client, handle_file, tmp: Path, H) -> list[list]:
    from adiff.nn.budget import arch_of, model_cost
    from adiff.nn.config import ModelConfig

    rows = []
    for name, changes, n in (
        ("2-D points: hidden 128, 5 layers", {"hidden_dim": 128, "num_layers": 5, "embedding_dim": 64}, "400 x 25"),
        (
            "image [1, 16, 16], patch 1 (256 tokens): hidden 64, 3 layers",
            {"data_shape": [1, 16, 16], "patch_size": 1, "hidden_dim": 64, "num_layers": 3},
            "16 x 25",
        ),
    ):
        path = tmp / f"accepted-{len(rows)}.safetensors"
        path.write_bytes(H.valid_checkpoint(changes, extra={"dataset": None}))
        flops = model_cost(arch_of(ModelConfig.from_dict({**H.SMALL, **changes}))).flops
        times = []
        for _ in range(3):
            t0 = time.time()
            _, status = client.predict(handle_file(str(path)), api_name="/load_model")
            times.append(time.time() - t0)
            assert status["status"] == "loaded", status
        rows.append([name, f"{flops:.3g}", n, " / ".join(f"{t:.2f}" for t in times)])
    return rows


_LIBRARY_CASE = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from adiff.data.uploads import images_from_zip

def status():
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) / 1024 for k, _, v in (l.partition(":") for l in f) if k in ("VmRSS", "VmHWM")}

def answer(s):  # what the Train tab shows of an accepted upload: the summary (this code) or the raw lists (before)
    shown = s.summary() if hasattr(s, "summary") else {"counts_per_class": s.counts, "skipped": s.skipped}
    return "ACCEPTED: " + json.dumps(shown, default=str, ensure_ascii=False)

data = open(sys.argv[2], "rb").read()
times, out = [], {}
for i in range(3):
    if i == 0:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        before = status()
    t0 = time.perf_counter()
    try:
        text = answer(images_from_zip(data, 16))
    except Exception as e:
        text = f"{type(e).__name__}: {e}"
    times.append(time.perf_counter() - t0)
    if i == 0:
        after = status()
        out = {"rss": before["VmRSS"], "after": after["VmRSS"], "peak": after["VmHWM"] - before["VmRSS"], "answer": text}
out["s"] = statistics.median(times)
print(json.dumps(out))
"""


def library_rows(apps: dict[str, Path], tmp: Path, H) -> list[list]:
    """Issue 23's archives through images_from_zip of each app's code, each in a fresh process (interleaved)."""
    import subprocess

    cases = {
        "zip64: 300,000 entries (16 MB)": H.zip64_many_entries(),
        "encrypted member": H.encrypted_zip(),
        "3,000 hidden entries, 1,000-character names": H.long_hidden_names_zip(),
        "100 class folders, 200-character names": H.many_long_classes_zip(),
    }
    rows = []
    for i, (case, blob) in enumerate(cases.items()):
        path = tmp / f"library{i}.zip"
        path.write_bytes(blob)
        for app_name, root in apps.items():
            run = subprocess.run(
                [sys.executable, "-c", _LIBRARY_CASE, str(root), str(path)], capture_output=True, text=True, timeout=600
            )
            if run.returncode != 0:
                rows.append([case, app_name, "", "", "", "", "", "failed: " + run.stderr.strip()[-100:]])
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append(
                [
                    case,
                    app_name,
                    f"{r['s'] * 1000:.2f}",
                    f"{r['rss']:.0f}",
                    f"{r['after'] - r['rss']:+.0f}",
                    f"{r['peak']:+.0f}",
                    f"{len(r['answer'].encode()):,}",
                    " ".join(r["answer"].split())[:90].replace("|", "/"),
                ]
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--baseline", default=None, help="a checkout whose app.py is measured too (e.g. before a fix)")
    ap.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "bench_uploads.txt"), help="report file ('' = none)"
    )
    args = ap.parse_args()
    if args.baseline and not (Path(args.baseline) / "app.py").is_file():
        ap.error(f"--baseline {args.baseline}: no app.py there")
    out = open(args.out, "w") if args.out else None  # noqa: SIM115 - open for the whole run
    if out:
        sys.stdout = Tee(sys.__stdout__, out)

    import torch
    from gradio_client import Client, handle_file

    from tests import hostile_files as H
    from tests.app_helpers import app_process, memory_mb

    torch.set_num_threads(1)  # the harness; the apps run with --max-heavy-jobs 2, so one torch thread per heavy job
    for k in MALLOC_ENV:  # the apps run as deployed
        os.environ.pop(k, None)
    apps = ({"baseline": Path(args.baseline).resolve()} if args.baseline else {}) | {"this code": ROOT}
    info = print_header(
        "bench_uploads: what a hostile upload costs the app",
        "cpu",
        args,
        {"apps": {k: str(v) for k, v in apps.items()}},
    )
    good = H.valid_checkpoint()
    files = {
        "config inflated: hidden 1024, mlp_ratio 16": H.with_config(good, hidden_dim=1024, num_layers=2, mlp_ratio=16),
        "largest config: hidden 8192, 64 layers": H.with_config(
            good, hidden_dim=8192, num_layers=64, mlp_ratio=16, num_heads=8
        ),
        "num_classes 100000, embedding 4096": H.with_config(
            good, model_type="conditional", num_classes=100_000, embedding_dim=4096
        ),
        "63 MB header": H.huge_header(63),
        "compute bomb: [1, 64, 64], patch_size 1": H.compute_bomb(),
        "NaN weights, checksum recomputed": H.with_nonfinite(good),
        "100,000 nested [ header": H.nested_header(),
        "counters Infinity": H.with_meta(good, counters={"training_step": float("inf")}),
        "counters [1]": H.with_meta(good, counters=[1]),
        # issue 15's own-data uploads (the Train tab): a drawing sent through the API, a zip, an image
        "/use_drawing: 144 M-pixel PNG (20 kB)": H.png_bomb(),
        "/use_images: zip inflating to 200 MB": H.zip_bomb(),
        "/use_images: 144 M-pixel PNG (20 kB)": H.png_bomb(),
        # issue 23: archives that cost before they are read, answers that echo, pictures as people take them
        "/use_images: zip64, 300,000 entries (16 MB)": H.zip64_many_entries(),
        "/use_images: encrypted zip member": H.encrypted_zip(),
        "/use_images: zip, 3,000 hidden 1,000-character names": H.long_hidden_names_zip(),
        "/use_images: 16-bit PNG at 25% gray (x2)": H.png16(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_uploads_"))
    paths = {}
    for i, (name, blob) in enumerate(files.items()):
        ext = ".zip" if "zip" in name else ".png" if "PNG" in name else ".safetensors"
        paths[name] = tmp / f"hostile{i}{ext}"
        paths[name].write_bytes(blob)

    def send(client, name: str, path: Path):
        if name.startswith("/use_drawing"):  # the API's composite image: a data URL (the canvas sends strokes)
            data_url = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            return client.predict(data_url, api_name="/use_drawing")
        if name.startswith("/use_images"):
            copies = 2 if "(x2)" in name else 1  # a set needs two images
            return client.predict([handle_file(str(path))] * copies, "16", api_name="/use_images")
        return client.predict(handle_file(str(path)), api_name="/load_model")

    (tmp / "good.safetensors").write_bytes(good)
    worst = {}
    for app_name, root in apps.items():
        rows = []
        with app_process(tmp / f"{app_name.replace(' ', '_')}.log", "--max-heavy-jobs", "2", root=root) as (url, pid):
            client = Client(url, verbose=False)
            client.predict(handle_file(str(tmp / "good.safetensors")), api_name="/load_model")  # warm-up
            for name, path in paths.items():
                if app_name != "this code" and name in BUILD_WOULD_KILL:
                    rows.append(
                        [name, "", "", "", "", "", "", "not sent (would allocate hundreds of GB; see the script)"]
                    )
                    continue
                before = memory_mb(pid)
                t0 = time.time()
                try:
                    result = send(client, name, path)  # the own-data routes answer (preview, status, dataset)
                    status = result[1] if name.startswith("/use_") else result[-1]
                    answer = "ACCEPTED: " + json.dumps(status, default=str, ensure_ascii=False)
                except Exception as e:  # noqa: BLE001 - the app's refusal is what is measured
                    answer = str(e)
                after = memory_mb(pid)
                if "VmRSS" not in after:  # a zombie: the app process died
                    rows.append(
                        [name, f"{before['VmRSS']:.0f}", "died", "", "", f"{time.time() - t0:.1f}", "", answer[:110]]
                    )
                    break
                left = after["VmRSS"] - before["VmRSS"]
                if not answer.startswith("ACCEPTED"):
                    worst[app_name] = max(worst.get(app_name, 0.0), left)
                rows.append(
                    [
                        name,
                        f"{before['VmRSS']:.0f}",
                        f"{after['VmRSS']:.0f}",
                        f"{left:+.0f}",
                        f"{after['VmHWM']:.0f}",
                        f"{time.time() - t0:.1f}",
                        f"{len(answer.encode()):,}",
                        " ".join(answer.split())[:110].replace("|", "/"),
                    ]
                )
            if app_name == "this code":
                preview_rows = timed_previews(client, handle_file, tmp, H)
        print_table(
            [
                "upload",
                "RSS before MB",
                "after MB",
                "left MB",
                "peak MB",
                "s",
                "answer bytes",
                "answer (first 110 characters)",
            ],
            rows,
            title=f"{app_name}: hostile uploads through /load_model (and the Train tab's own data)",
        )
        print()
    print_table(
        [
            "accepted model (84% of the FLOPs budget)",
            "FLOPs/sample",
            "preview samples x steps",
            "/load_model s (load + preview)",
        ],
        preview_rows,
        title="this code: what the budget allows, timed (one torch thread in the app per heavy job)",
    )
    print()
    print_table(
        [
            "archive",
            "code",
            "ms (median of 3)",
            "RSS before MB",
            "left MB",
            "peak MB",
            "answer bytes",
            "answer (start)",
        ],
        library_rows(apps, tmp, H),
        title="adiff.data.uploads.images_from_zip alone, one fresh process per row (issue 23's archives)",
    )
    print()
    for app_name, mb in worst.items():
        print(f"{app_name}: the most a refused upload left behind: {mb:+.0f} MB (target < {LEFT_BEHIND_MB:.0f} MB)")
    ok = worst.get("this code", 0.0) < LEFT_BEHIND_MB
    print("verdict (this code): " + ("PASS" if ok else "FAIL"))
    print(f"\nbench_uploads on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}")
    print_footer()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
