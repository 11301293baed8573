"""The preset training loop, on one process or many (torchrun + DistributedDataParallel), resumable.

    torchrun --nproc_per_node N -m adiff.train --preset moons ...      # gloo on CPUs, NCCL on GPUs (one per process)

What makes a run reproducible whatever the number of processes: the global batch of B samples is made of S
*shards* of B / S samples.  Shard m draws its samples from ``DistributedSampler(num_replicas=S, rank=m, seed=seed)``
(shuffled passes over the dataset, set_epoch per pass) and its noise, timesteps and label dropout from a generator
seeded by (seed, m, step).  The loss is the mean of the shard losses, i.e. the mean over the global batch.  Under
torchrun every process holds one shard (S = world size) and DDP averages the gradients, which gives the same
gradient as one process computing all S shards (``--shards S``).  Both then take the same optimiser step, so the
weights agree to float rounding (tests/test_distributed.py: 2 gloo processes vs one, 1e-5, EMA included).
Because every draw is a function of (seed, shard, step), a run resumed from a checkpoint continues exactly.

The training step wraps the model's public pieces: ``model.loss(x0, condition, generator, model=<DDP module>)`` and
``model.optimizer_step(loss)`` (backward, clipping, optimiser, LR schedule, EMA); nothing of the loss lives here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data.distributed import DistributedSampler

from ..model import DiffusionModel
from ..nn.checkpoints import parse_json
from ..nn.config import resolve_device
from ..nn.optim import TrainEvent
from ..steering.reflow import reflow_loss

__all__ = [
    "DistInfo",
    "init_distributed",
    "close_distributed",
    "ShardedBatches",
    "shard_generator",
    "train_loop",
    "save_resume_state",
    "load_resume_state",
    "ResumeError",
]


# ---------------------------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class DistInfo:
    rank: int  # this process, 0..world_size-1 (0 logs, evaluates and writes)
    world_size: int  # number of processes (1 without torchrun)
    local_rank: int  # this process on its node (picks the GPU)
    backend: str | None  # "gloo" | "nccl" | None (a single process)
    device: torch.device  # where this process trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the environment),
    or return a single-process DistInfo when there is none.  NCCL with one GPU per process (cuda:LOCAL_RANK) when
    the device is "cuda" (or "auto" and CUDA is present), gloo on CPUs otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, None, resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device is {device!r} but no CUDA GPU is available on this machine")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if torch.cuda.device_count() < local_world:
            raise ValueError(
                f"--nproc_per_node {local_world} needs one GPU per process; this node has {torch.cuda.device_count()}"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local_rank, backend, dev)


def close_distributed(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(value: float, info: DistInfo) -> float:
    """The mean of a number over all processes (a collective: every process must call it at the same step)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t) / info.world_size


# ---------------------------------------------------------------------------------------------- data and noise
def shard_generator(seed: int, shard: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of one shard at one step: a function of (seed, shard, step) only, so runs resume exactly and
    do not depend on how shards are spread over processes."""
    digest = hashlib.blake2b(f"adiff:{seed}:{shard}:{step}".encode(), digest_size=8).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


class ShardedBatches:
    """Indices of shard m's samples at each step: shard m reads DistributedSampler(range(N), num_replicas=shards,
    rank=m, shuffle=True, seed=seed) pass after pass (set_epoch(e) for pass e), ``per_shard`` indices a step."""

    def __init__(self, num_items: int, batch_size: int, shards: int, seed: int):
        if shards < 1 or batch_size % shards:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of the number of shards ({shards})")
        self.per_shard = batch_size // shards
        self.samplers = [
            DistributedSampler(range(num_items), num_replicas=shards, rank=m, shuffle=True, seed=seed)
            for m in range(shards)
        ]
        self._epochs: dict[tuple[int, int], torch.Tensor] = {}

    def _epoch(self, shard: int, epoch: int) -> torch.Tensor:
        key = (shard, epoch)
        if key not in self._epochs:
            for old in [k for k in self._epochs if k[0] == shard and k[1] < epoch - 1]:
                del self._epochs[old]
            sampler = self.samplers[shard]
            sampler.set_epoch(epoch)
            self._epochs[key] = torch.tensor(list(iter(sampler)), dtype=torch.long)
        return self._epochs[key]

    def indices(self, shard: int, step: int) -> torch.Tensor:
        """long [per_shard]: the dataset rows of shard ``shard`` at step ``step`` (0-based)."""
        length = len(self.samplers[shard])
        start = step * self.per_shard
        parts, pos, end = [], start, start + self.per_shard
        while pos < end:
            epoch, offset = divmod(pos, length)
            take = min(end - pos, length - offset)
            parts.append(self._epoch(shard, epoch)[offset : offset + take])
            pos += take
        return torch.cat(parts)


# ---------------------------------------------------------------------------------------------- the loop
def train_loop(
    model: DiffusionModel,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    info: DistInfo,
    shards: int | None = None,
    start_step: int = 0,
    on_checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 0,
    noise: torch.Tensor | None = None,
) -> Iterator[TrainEvent]:
    """Train ``model`` (already set up with its optimiser) from ``start_step`` to ``steps`` on the dataset
    x [N, *data_shape] (labels [N] for a conditional model), yielding this process's TrainEvent per step.

    ``batch_size`` is the global batch (all processes together); ``shards`` defaults to the world size and must
    equal it under torchrun (one shard per process).  ``on_checkpoint(step)`` runs on every process after each
    ``checkpoint_every`` steps (0 = never).  ``noise`` [N, *data_shape]: each row's own x_1 (a reflow preset's
    pairs, adiff.steering.reflow.reflow_loss) instead of fresh noise."""
    shards = shards or info.world_size
    if info.distributed and shards != info.world_size:
        raise ValueError(f"shards must equal the number of processes under torchrun ({info.world_size}), got {shards}")
    batches = ShardedBatches(x.shape[0], batch_size, shards, seed)
    mine = [info.rank] if info.distributed else list(range(shards))
    module = model.denoiser
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [info.device.index] if info.device.type == "cuda" else None
        module = DDP(model.denoiser, device_ids=ids)  # broadcasts rank 0's weights; averages gradients in backward
    x = x.to(info.device)
    noise = noise.to(info.device) if noise is not None else None
    labels = labels.to(info.device) if labels is not None and model.is_conditional else None
    model.denoiser.train()
    for step in range(start_step, steps):
        losses = []
        for m in mine:
            idx = batches.indices(m, step).to(info.device)
            g = shard_generator(seed, m, step, info.device)
            if noise is None:
                losses.append(model.loss(x[idx], None if labels is None else labels[idx], g, model=module))
            else:
                losses.append(
                    reflow_loss(model, noise[idx], x[idx], g, module, None if labels is None else labels[idx])
                )
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        yield model.optimizer_step(loss)
        if on_checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            on_checkpoint(step + 1)


# ---------------------------------------------------------------------------------------------- resuming
class ResumeError(ValueError):
    """A resume file that does not exist, cannot be read, or belongs to another run."""


RESUME_FORMAT = "adiff-resume"
MAX_RESUME_JSON = 64 * 2**20  # the optimiser's plain values and the structure; the tensors are outside the JSON


def _pack(obj, tensors: dict, where: str = "state"):
    """A state (dicts, lists, tuples, tensors, numbers, strings) -> JSON: every tensor is moved into ``tensors`` and
    named in its place; dicts keep keys of any JSON type (the optimiser's state is keyed by parameter index)."""
    if torch.is_tensor(obj):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()  # safetensors refuses shared or strided storage
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__items__": [[k, _pack(v, tensors, f"{where}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"resume state field {where!r} is a {type(obj).__name__}, which a resume file cannot hold")


def _unpack(obj, tensors: dict):
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"}:
            return tuple(_unpack(v, tensors) for v in obj["__tuple__"])
        if set(obj) == {"__items__"}:
            return {k: _unpack(v, tensors) for k, v in obj["__items__"]}
        raise ValueError(f"unknown entry with keys {sorted(obj)[:5]}")
    return obj


def save_resume_state(path: Path, model: DiffusionModel, run: dict) -> Path:
    """Everything a run needs to continue exactly (weights, EMA and its update count, optimiser, LR schedule, grad
    scaler, step) and what it was started with (``run``: preset, seed, batch, shards, steps...), written atomically
    as a .safetensors file: the tensors, and everything else as JSON in its metadata (nothing is pickled, so a resume
    file from anywhere is read as data only)."""
    st = model.get_state_dict()
    state = {
        "run": dict(run),
        "step": model.training_step,
        "denoiser": st["denoiser"],
        "ema": st["ema"],
        "ema_updates": model.ema.num_updates,
        "optimizer": model.optimizer.state_dict(),
        "lr_scheduler": model.lr_scheduler.state_dict(),
        "scaler": model._scaler.state_dict(),
    }
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.dumps(_pack(state, tensors))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": RESUME_FORMAT, "format_version": "1", "state": skeleton})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_resume_state(path: Path, model: DiffusionModel, run: dict) -> int:
    """Restore a run saved by save_resume_state into ``model`` (set up with its optimiser); returns the step to
    continue from.  Raises ResumeError naming the path when the file is missing or unreadable, or when it was made
    by a run with other settings (the field and both values are named)."""
    if not path.is_file():
        raise ResumeError(f"--resume: no resume file at {path} (it is written every --checkpoint-every steps)")
    try:  # safetensors reads data only; the JSON is parsed with adiff's size and depth limits
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            if md.get("format") != RESUME_FORMAT or md.get("format_version") != "1":
                raise ValueError(f"no '{RESUME_FORMAT}' version 1 metadata")
            skeleton = parse_json(md.get("state", ""), "its state", max_bytes=MAX_RESUME_JSON)
            state = _unpack(skeleton, {k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118 - safe_open has no __iter__
        saved = state["run"]
    except Exception as e:  # truncated file, another format, wrong content: all mean "not a resume file"
        raise ResumeError(f"--resume: {path} is not a readable resume file ({type(e).__name__}: {e})") from None
    for key, value in run.items():
        if saved.get(key) != value:
            raise ResumeError(f"--resume: {path} was made with {key} = {saved.get(key)!r}, this run has {value!r}")
    model.load_state_dict(
        {"config": model.config, "denoiser": state["denoiser"], "ema": state["ema"], "training_step": state["step"]}
    )
    model.ema.num_updates = int(state["ema_updates"])
    model.optimizer.load_state_dict(state["optimizer"])
    model.lr_scheduler.load_state_dict(state["lr_scheduler"])
    model._scaler.load_state_dict(state["scaler"])
    return int(state["step"])
