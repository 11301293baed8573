"""What a preset trains on, and the few-step comparison a reflow preset's card carries.

Most presets train on their dataset, with fresh noise at every step.  A reflow preset (``PresetSpec.reflow``,
adiff.steering.reflow) trains on its teacher's pairs (x_1, ODE(x_1)): the training command loads the teacher preset,
starts the student from its weights, makes the pairs from the seed (``couple``: the same pairs on every process and
on a resumed run), and the loss then takes each pair's x_1 as its noise (``train_loop(noise=...)``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch

from ..data import make_dataset
from ..eval.metrics import mmd2
from ..presets import PresetSpec, load_preset, preset_spec
from ..steering.reflow import couple

__all__ = ["TrainingData", "training_data", "FEW_NFE", "few_step_quality"]

FEW_NFE = (1, 2, 4)  # Euler steps at which a reflow preset's card compares it with its teacher


@dataclass
class TrainingData:
    x: torch.Tensor  # [N, *data_shape] what the loss takes as x_0 (data, or the teacher's ODE end points)
    labels: torch.Tensor | None  # [N] for conditional models
    noise: torch.Tensor | None  # [N, *data_shape] each row's own x_1 (reflow pairs); None: fresh noise per step
    card: dict  # what the model card records about the data (a reflow's teacher, pairs and their cost)


def training_data(spec: PresetSpec, model, seed: int, quiet: bool = False) -> TrainingData:
    """The preset's training data; for a reflow preset also loads the teacher's weights into ``model``."""
    if spec.reflow is None:
        x, labels = make_dataset(spec.dataset, spec.dataset_size, seed=seed)
        return TrainingData(x, labels, None, {})
    r = spec.reflow
    teacher = load_preset(r.teacher, device=str(model.device))
    model.load_state_dict(  # warm start (Liu et al. 2022 start their reflow from the 1-rectified flow too)
        {"config": teacher.config, "denoiser": teacher.ema.module.state_dict(), "ema": teacher.ema.module.state_dict()}
    )
    t0, cpu0 = time.time(), time.process_time()
    say = None if quiet else (lambda done, total: sys.stderr.write(f"\rcoupling {r.teacher}: {done}/{total} pairs "))
    pairs = couple(teacher, r.pairs, r.sampler, r.num_steps, seed, progress=say, **preset_spec(r.teacher).sample_kwargs)
    if not quiet:
        sys.stderr.write("\n")
    info = {
        "teacher": r.teacher,
        "pairs": r.pairs,
        "sampler": r.sampler,
        "num_steps": r.num_steps,
        "nfe_per_pair": pairs.nfe,
        "couple_seconds": round(time.time() - t0, 1),
        "couple_cpu_seconds": round(time.process_time() - cpu0, 1),
    }
    return TrainingData(pairs.x0, pairs.labels, pairs.x_T, {"reflow": info})


def few_step_quality(model, spec: PresetSpec, draws: int = 5, seed: int = 0, n: int = 2000) -> dict:
    """MMD^2 to fresh data of Euler samples at each of FEW_NFE steps, for the reflow preset ``model`` and its
    teacher from the same noise and against the same data draws (mean over ``draws`` with its standard error), and
    the floor: fresh data against the same draws."""
    models = {spec.name: model, spec.reflow.teacher: load_preset(spec.reflow.teacher, device=str(model.device))}
    refs = [make_dataset(spec.dataset, n, seed=40_000 + seed * 1000 + k)[0] for k in range(draws)]
    floor = torch.tensor(
        [mmd2(make_dataset(spec.dataset, n, seed=50_000 + seed * 1000 + k)[0], r) for k, r in enumerate(refs)]
    )
    out = {"n": n, "draws": draws, "sampler": "euler", "nfe": list(FEW_NFE), "mmd2": {}, "mmd2_se": {}}
    out["floor_mmd2"], out["floor_mmd2_se"] = float(floor.mean()), float(floor.std() / draws**0.5)
    for name, m in models.items():
        means, ses = [], []
        for nfe in FEW_NFE:
            x, _ = m.generate(
                n * draws, seed=seed, sampler="euler", num_steps=nfe, keep_every=10**9, **spec.sample_kwargs
            )
            v = torch.tensor([mmd2(xk.cpu(), r) for xk, r in zip(x.split(n), refs)], dtype=torch.float64)
            means.append(float(v.mean()))
            ses.append(float(v.std() / draws**0.5))
        out["mmd2"][name], out["mmd2_se"][name] = means, ses
    return out
