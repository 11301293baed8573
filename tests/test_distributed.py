"""Training that scales out and the training command as a user meets it: DDP on 2 gloo processes against one
process on the same global batch and seed, an interrupted run resumed exactly, output folders, evaluation flags.
Real processes (torchrun), real checkpoints; no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adiff import DiffusionModel
from adiff.cli.distributed import ResumeError, ShardedBatches, load_resume_state, save_resume_state, shard_generator
from adiff.presets import preset_spec

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(args, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on a timeout the whole group (torchrun's workers too) is killed."""
    proc = subprocess.Popen(
        args, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _torchrun(n, *args):
    return _run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), *args])


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    one, two, plain = tmp_path / "one.safetensors", tmp_path / "two.safetensors", tmp_path / "plain.safetensors"
    r1 = _run([PY, "tests/ddp_worker.py", str(one), "--shards", "2"])
    r2 = _torchrun(2, "tests/ddp_worker.py", str(two))
    r3 = _run([PY, "tests/ddp_worker.py", str(plain), "--shards", "1"])
    for r in (r1, r2, r3):
        assert r.returncode == 0, r.stderr[-2000:]
    a, b, c = load_file(str(one)), load_file(str(two)), load_file(str(plain))
    assert {k.split(".")[0] for k in a} == {"denoiser", "ema"}  # raw weights and EMA
    assert _max_diff(a, b) <= 1e-5
    assert _max_diff(a, c) > 1e-3  # another split of the randomness is another run: the comparison can fail
    model = DiffusionModel.load(two, device="cpu")  # the app's loader reads what rank 0 wrote
    assert model.training_step == 6


def test_sharded_batches_cover_the_data_and_do_not_depend_on_processes():
    b = ShardedBatches(num_items=10, batch_size=4, shards=2, seed=3)
    # Each shard reads 5 of the 10 items a pass (2 a step): steps 0, 1 and the first item of step 2 are one pass,
    # and the two shards' passes together hold every item once.
    first_pass = [int(i) for m in range(2) for i in torch.cat([b.indices(m, 0), b.indices(m, 1), b.indices(m, 2)[:1]])]
    assert sorted(first_pass) == list(range(10))
    assert torch.equal(ShardedBatches(10, 4, 2, 3).indices(1, 7), b.indices(1, 7))  # a function of (shard, step)
    g1, g2 = shard_generator(1, 0, 5, torch.device("cpu")), shard_generator(1, 0, 5, torch.device("cpu"))
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert not torch.equal(
        torch.rand(3, generator=shard_generator(1, 1, 5, torch.device("cpu"))),
        torch.rand(3, generator=shard_generator(1, 0, 5, torch.device("cpu"))),
    )
    with pytest.raises(ValueError, match=r"batch_size \(5\) must be a multiple of the number of shards \(2\)"):
        ShardedBatches(10, 5, 2, 0)


def test_an_interrupted_run_resumes_exactly(tmp_path):
    common = ["-m", "adiff.train", "--preset", "moons", "--steps", "90", "--no-eval", "--threads", "1"]
    straight = _run([PY, *common, "--out", str(tmp_path / "a"), "--checkpoint-every", "0"])
    assert straight.returncode == 0, straight.stderr[-2000:]
    out = tmp_path / "b"
    proc = subprocess.Popen(
        [PY, *common, "--out", str(out), "--checkpoint-every", "15"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    resume_file = out / "moons.resume.safetensors"
    deadline = time.time() + 120
    while not resume_file.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # the user's machine dies mid-run
    proc.wait()
    assert resume_file.exists() and not (out / "moons.safetensors").exists()
    resumed = _run([PY, *common, "--out", str(out), "--checkpoint-every", "15", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming moons at step" in resumed.stderr
    card = json.loads((out / "moons.json").read_text())
    assert card["resumed_at_step"] >= 15 and not resume_file.exists()
    assert (
        _max_diff(load_file(str(tmp_path / "a" / "moons.safetensors")), load_file(str(out / "moons.safetensors")))
        <= 1e-6
    )
    # A resume file from another run is refused with the field that differs.
    other = _run([PY, *common, "--out", str(tmp_path / "c"), "--resume"])
    assert other.returncode != 0 and "no resume file" in other.stderr


def test_a_resume_file_is_safetensors_and_json_and_a_pickle_is_refused(tmp_path):
    """The resume file holds tensors and JSON only (no pickle); read back, the optimiser, LR schedule, EMA and
    counters are those saved.  A pickle (or any other file) under its name is refused unread, naming the path."""
    cfg = {
        "model_type": "unconditional",
        "embedding_dim": 16,
        "hidden_dim": 16,
        "num_layers": 1,
        "num_diffusion_steps": 20,
        "device": "cpu",
    }
    model = DiffusionModel(cfg)
    model.setup_training({"learning_rate": 1e-3, "warmup_steps": 2})
    x = torch.randn(64, 2)
    for _ in range(3):
        model.optimizer_step(model.loss(x, None, torch.Generator().manual_seed(0)))
    run = {"preset": "toy", "seed": 1}
    path = save_resume_state(tmp_path / "toy.resume.safetensors", model, run)
    assert load_file(str(path))  # a plain safetensors file
    twin = DiffusionModel(cfg)
    twin.setup_training({"learning_rate": 1e-3, "warmup_steps": 2})
    assert load_resume_state(path, twin, run) == model.training_step == 3
    a, b = model.optimizer.state_dict(), twin.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i, st in a["state"].items():
        assert all(torch.equal(v, b["state"][i][k]) for k, v in st.items())
    assert model.lr_scheduler.state_dict() == twin.lr_scheduler.state_dict()
    assert twin.ema.num_updates == model.ema.num_updates
    assert all(torch.equal(v, twin.ema.module.state_dict()[k]) for k, v in model.ema.module.state_dict().items())
    with pytest.raises(ResumeError, match="was made with seed = 1, this run has 2"):
        load_resume_state(path, twin, {**run, "seed": 2})
    torch.save({"run": run}, tmp_path / "evil.resume.safetensors")  # a pickle under the resume file's name
    with pytest.raises(ResumeError, match="evil.resume.safetensors is not a readable resume file"):
        load_resume_state(tmp_path / "evil.resume.safetensors", twin, run)


def test_the_shipped_presets_need_ship_and_the_default_is_runs(tmp_path):
    r = _run([PY, "-m", "adiff.train", "--preset", "moons", "--out", "assets/presets", "--steps", "1"])
    assert r.returncode == 2 and "is the shipped preset folder: pass --ship" in r.stderr
    r = _run([PY, "-m", "adiff.train", "--preset", "moons", "--ship", "--out", str(tmp_path)])
    assert r.returncode == 2 and "--ship writes into the shipped preset folder" in r.stderr
    r = _run([PY, "-m", "adiff.train", "--preset", "moons", "--steps", "3", "--no-eval"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "runs" / "moons.safetensors").is_file()
    assert json.loads((tmp_path / "runs" / "moons.json").read_text())["eval"] == "skipped (--no-eval)"


def test_checkpoint_before_evaluation_and_progress_during_it(tmp_path):
    r = _run(
        [
            PY,
            "-m",
            "adiff.train",
            "--preset",
            "glyphs",
            "--steps",
            "3",
            "--eval-draws",
            "1",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert r.returncode == 0, r.stderr[-2000:]
    err = r.stderr
    spec = preset_spec("glyphs")
    bar = f"eval {spec.sampler}{spec.num_steps} ["  # the evaluation samples at the preset's default solver and steps
    assert err.index("wrote ") < err.index(bar)  # the checkpoint exists before the evaluation starts
    assert f"{spec.num_steps}/{spec.num_steps}" in err
    card = json.loads((tmp_path / "glyphs.json").read_text())
    assert card["eval"] == "done" and card["quality"]["n"] == 100
    assert card["quality"]["sampler"] == spec.sampling
    assert card["command"] == "python -m adiff.train --preset glyphs --steps 3 --threads 1 --eval-draws 1"


def test_eval_only_rewrites_the_quality_and_keeps_the_training_record(tmp_path):
    spec = preset_spec("moons-flow")
    train = [PY, "-m", "adiff.train", "--preset", "moons-flow", "--threads", "1", "--out", str(tmp_path)]
    r = _run([*train, "--steps", "20", "--no-eval"])
    assert r.returncode == 0, r.stderr[-2000:]
    before = json.loads((tmp_path / "moons-flow.json").read_text())
    weights = (tmp_path / "moons-flow.safetensors").read_bytes()
    r = _run([*train, "--eval-only", "--eval-draws", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"eval {spec.sampler}{spec.num_steps} [" in r.stderr
    card = json.loads((tmp_path / "moons-flow.json").read_text())
    q = card["quality"]
    assert q["sampler"] == spec.sampling and q["draws"] == 2 and len(q["mmd2_draws"]) == 2
    assert q["mmd2"] == pytest.approx(sum(q["mmd2_draws"]) / 2) and q["mmd2_se"] > 0
    assert q["mmd2"] > 10 * abs(q["floor_mmd2"])  # 20 training steps: far from the data, and the figure shows it
    assert card["eval"] == "done" and card["eval_command"].endswith("--eval-draws 2 --eval-only")
    for key in ("steps", "train_seconds", "final_loss", "command", "config"):
        assert card[key] == before[key], key
    assert (tmp_path / "moons-flow.safetensors").read_bytes() == weights  # evaluating never rewrites the weights
    r = _run([*train, "--eval-only", "--steps", "5"])
    assert r.returncode == 2 and "--eval-only trains nothing: drop --steps" in r.stderr
    r = _run([PY, "-m", "adiff.train", "--preset", "moons", "--eval-only", "--out", str(tmp_path)])
    assert r.returncode == 2 and "--eval-only needs a checkpoint at" in r.stderr
