"""Trains a small conditional 2-D model with adiff.cli.distributed.train_loop and writes its full weights (raw and
EMA): run by tests/test_distributed.py as one process (``python tests/ddp_worker.py OUT --shards 2``) and under
torchrun (``torchrun --nproc_per_node 2 tests/ddp_worker.py OUT``)."""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adiff import DiffusionModel  # noqa: E402
from adiff.cli.distributed import close_distributed, init_distributed, train_loop  # noqa: E402
from adiff.data import make_dataset  # noqa: E402
from tests.configs import tiny  # noqa: E402

CONFIG = tiny(model_type="conditional", num_classes=8, num_diffusion_steps=100, cfg_dropout=0.2, ema_decay=0.9)
del CONFIG["device"]  # each process picks its own

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shards", type=int, default=None)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    torch.manual_seed(0)
    model = DiffusionModel({**CONFIG, "device": "cpu"})
    x, labels = make_dataset("8gaussians", 1000, seed=0)
    model.setup_training({"learning_rate": 3e-3, "scheduler_steps": args.steps, "warmup_steps": 2})
    for _ in train_loop(
        model, x, labels, steps=args.steps, batch_size=args.batch_size, seed=7, info=info, shards=args.shards
    ):
        pass
    close_distributed(info)
    if info.is_main:
        model.save(args.out)  # raw and EMA weights
