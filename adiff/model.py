"""DiffusionModel: the original design's public API, a thin facade over schedules, denoisers, sampling,
guidance, training and checkpoints."""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

import torch

from .nn import checkpoints
from .steering.buffer import TrajectoryBuffer
from .nn.budget import DEFAULT_BUDGET, Budget, admit_checkpoint, check_shapes
from .nn.config import ModelConfig, resolve_device
from .nn.denoisers import build_denoiser
from .steering.guidance import ConditionalEps
from .samplers import StepRecord, Trajectory, TrajectoryRecorder, ddpm_step, sample_progressive
from .diffusion.schedules import make_schedule
from .nn.training import EMA, OptimizerConfig, TrainEvent, epsilon_loss, make_lr_scheduler, make_optimizer

__all__ = ["DiffusionModel"]
log = logging.getLogger(__name__)

_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
ARCH_FIELDS = (
    "model_type", "embedding_dim", "hidden_dim", "num_layers", "num_heads", "num_diffusion_steps", "noise_schedule",
    "custom_schedule_values", "data_shape", "num_classes", "patch_size", "mlp_ratio",
)  # fmt: skip


class DiffusionModel:
    """A denoising diffusion model: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps for t = 1..T, and a transformer
    eps_theta(x_t, t[, y]) trained to predict eps.  Sampling uses an EMA of the weights."""

    def __init__(self, config: dict | ModelConfig):
        self.cfg = ModelConfig.from_dict(config)
        self.config = self.cfg.to_dict()
        self.model_type = self.cfg.model_type
        self.num_diffusion_steps = self.cfg.num_diffusion_steps
        self.data_shape = tuple(self.cfg.data_shape)
        self.device = resolve_device(self.cfg.device)
        self.precision = self.cfg.precision if self.device.type == "cuda" else "fp32"
        if self.precision != self.cfg.precision:
            log.info("precision %s applies on CUDA only; using fp32 on %s", self.cfg.precision, self.device)
        self.noise_schedule = make_schedule(self.cfg.noise_schedule, self.num_diffusion_steps, self.cfg.custom_schedule_values)
        self.denoiser = build_denoiser(self.cfg).to(self.device)
        self.ema = EMA(self.denoiser, self.cfg.ema_decay)
        self.optimizer = None
        self.lr_scheduler = None
        self.optimizer_config: OptimizerConfig | None = None
        self._scaler = None
        self.training_step = 0
        self.adaptation_step = 0
        self.eval_metrics: dict = {}
        self.trajectory_buffer = TrajectoryBuffer(capacity=self.cfg.buffer_capacity)
        self.adaptation_hooks: list[Callable] = []
        self.metadata: dict = {}  # what a checkpoint carried besides the model (dataset, preset)

    # ------------------------------------------------------------------ helpers
    @property
    def is_conditional(self) -> bool:
        return self.model_type == "conditional"

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.denoiser.parameters())

    def autocast(self):
        """Mixed precision on CUDA per config.precision; a no-op on the CPU."""
        if self.device.type == "cuda" and self.precision in _AUTOCAST:
            return torch.autocast("cuda", dtype=_AUTOCAST[self.precision])
        return contextlib.nullcontext()

    def make_generator(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(int(seed))

    def _check_batch(self, x: torch.Tensor, name: str = "x_0") -> torch.Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise ValueError(f"{name} must be a float tensor [B, {', '.join(map(str, self.data_shape))}], got {type(x).__name__}")
        if tuple(x.shape[1:]) != self.data_shape or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape [B, {', '.join(map(str, self.data_shape))}], got {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf")
        return x.to(self.device, torch.float32)

    def labels(self, condition, batch: int) -> torch.Tensor | None:
        """A condition (int, list or LongTensor [B]; None = the null class) as labels [B] on the device."""
        if not self.is_conditional:
            if condition is not None:
                raise ValueError("condition was given but this model is unconditional")
            return None
        n = self.cfg.num_classes
        if condition is None:
            return torch.full((batch,), n, dtype=torch.long, device=self.device)
        if isinstance(condition, int) and not isinstance(condition, bool):
            condition = torch.full((batch,), condition, dtype=torch.long)
        lab = torch.as_tensor(condition).to(self.device)
        if lab.is_floating_point() and lab.dim() >= 2:
            return lab  # an embedding context [B, S, embedding_dim]
        lab = lab.long().reshape(-1)
        if lab.numel() != batch:
            raise ValueError(f"condition must have {batch} labels, got {lab.numel()}")
        if int(lab.min()) < 0 or int(lab.max()) > n:
            raise ValueError(f"condition labels must be in 0..{n - 1} (or {n} for none), got {lab.unique().tolist()[:8]}")
        return lab

    # ------------------------------------------------------------------ noise predictor
    def noise_predictor(self, condition=None, batch: int | None = None, use_ema: bool = True):
        """eps_fn(x_t [B, ...], t [B] in 1..T) for the samplers; conditional models return a ConditionalEps
        (so classifier-free guidance can be applied by the sampler)."""
        net = self.ema.module if use_ema else self.denoiser
        T = self.num_diffusion_steps

        def run(x, t, labels=None):
            # Samplers give every sample the same t: one timestep row then broadcasts through the adaLN
            # conditioning instead of recomputing it per sample (about 23% of a forward's FLOPs).
            if t.numel() > 1 and bool((t == t[0]).all()):
                t = t[:1]
            with self.autocast():
                return net(x, t.float() / T, labels).float()

        labels = self.labels(condition, batch)  # raises for a condition on an unconditional model
        if not self.is_conditional:
            return lambda x, t: run(x, t)
        return ConditionalEps(run, labels, self.cfg.num_classes)

    # ------------------------------------------------------------------ the design's methods
    def setup_training(self, optimizer_config: dict | None = None) -> None:
        """AdamW/Adam with a warmup + cosine/linear (or constant) LR schedule; keys as in the design."""
        self.optimizer_config = OptimizerConfig.from_dict(optimizer_config)
        self.optimizer = make_optimizer(self.denoiser.parameters(), self.optimizer_config)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, self.optimizer_config)
        self._scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and self.precision == "fp16")

    def forward_diffusion(self, x_0: torch.Tensor, noise_level, generator: torch.Generator | None = None):
        """x_t = sqrt(1 - sigma^2) x_0 + sigma eps for a noise level sigma = sqrt(1 - abar) in [0, 1] (float or [B]).
        Returns (x_t, eps)."""
        x0 = self._check_batch(x_0)
        sigma = torch.as_tensor(noise_level, dtype=torch.float32, device=self.device)
        if not torch.isfinite(sigma).all() or (sigma < 0).any() or (sigma > 1).any():
            raise ValueError(f"noise_level must lie in [0, 1], got {noise_level!r}")
        sigma = sigma.reshape(sigma.shape + (1,) * (x0.dim() - sigma.dim())) if sigma.dim() else sigma
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        return torch.sqrt(1 - sigma**2) * x0 + sigma * noise, noise

    def q_sample(self, x_0: torch.Tensor, t, generator: torch.Generator | None = None):
        """x_t ~ q(x_t | x_0) at integer timesteps t (int or [B]); returns (x_t, eps)."""
        x0 = self._check_batch(x_0)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        return self.noise_schedule.q_sample(x0, t, noise), noise

    def loss(self, x_0: torch.Tensor, condition=None, generator=None, model=None) -> torch.Tensor:
        """The epsilon-MSE of a batch (with classifier-free-guidance label dropout for conditional models)."""
        x0 = self._check_batch(x_0)
        labels = self.labels(condition, x0.shape[0])
        if labels is not None and labels.dim() == 1 and self.denoiser.training and self.cfg.cfg_dropout > 0:
            drop = torch.rand(labels.shape, device=self.device, generator=generator) < self.cfg.cfg_dropout
            labels = torch.where(drop, torch.full_like(labels, self.cfg.num_classes), labels)
        with self.autocast():
            return epsilon_loss(model or self.denoiser, self.noise_schedule, x0, labels, generator)

    def optimizer_step(self, loss: torch.Tensor) -> TrainEvent:
        """Backward, clip, step, LR schedule, EMA.  A non-finite loss changes nothing and raises."""
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError(f"loss is {float(loss)} at step {self.training_step}: the update was skipped")
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward()
        self._scaler.unscale_(self.optimizer)
        clip = self.optimizer_config.grad_clip or float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), clip))
        self._scaler.step(self.optimizer)
        self._scaler.update()
        self.lr_scheduler.step()
        self.ema.update(self.denoiser)
        self.training_step += 1
        return TrainEvent(self.training_step, float(loss.detach()), lr, grad_norm)

    def train_step(self, x_0: torch.Tensor, condition=None, generator: torch.Generator | None = None) -> float:
        """One optimisation step on a batch x_0 [B, *data_shape] (any data shape); returns the loss."""
        return self._update(x_0, condition, generator).loss

    def _update(self, x_0, condition=None, generator=None) -> TrainEvent:
        if self.optimizer is None:
            self.setup_training()
        self.denoiser.train()
        return self.optimizer_step(self.loss(x_0, condition, generator))

    def training_loop(self, dataloader, num_epochs: int, condition_fn=None, eval_fn=None, callback=None) -> dict:
        """The design's epoch loop over a dataloader yielding x_0 or (x_0, labels)."""
        metrics = {"epoch_losses": [], "step_losses": [], "eval_metrics": [], "best_eval_score": float("-inf")}
        for _ in range(num_epochs):
            losses = []
            for batch in dataloader:
                if isinstance(batch, (tuple, list)) and len(batch) == 2:
                    x0, cond = batch
                    cond = condition_fn(cond) if condition_fn else cond
                else:
                    x0, cond = batch, None
                event = self._update(x0, cond if self.is_conditional else None)
                losses.append(event.loss)
                if callback is not None:
                    callback(event)
            metrics["epoch_losses"].append(sum(losses) / max(1, len(losses)))
            metrics["step_losses"].extend(losses)
            if eval_fn is not None:
                score = float(eval_fn(self))
                metrics["eval_metrics"].append(score)
                metrics["best_eval_score"] = max(metrics["best_eval_score"], score)
        self.eval_metrics = metrics
        return metrics

    def train_progressive(self, x: torch.Tensor, labels=None, num_steps: int = 1000, batch_size: int = 256, seed: int = 0) -> Iterator[TrainEvent]:
        """Train on a dataset tensor x [N, *data_shape] (labels [N] for conditional models) with random minibatches,
        yielding a TrainEvent per step (the app draws its live loss curve from these)."""
        x = self._check_batch(x, "x")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self.optimizer is None:
            self.setup_training({"scheduler_steps": num_steps, "warmup_steps": min(200, num_steps // 10)})
        lab = None if labels is None or not self.is_conditional else torch.as_tensor(labels).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        for _ in range(num_steps):
            idx = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), device=self.device, generator=gen)
            yield self._update(x[idx], None if lab is None else lab[idx], gen)

    def single_denoising_step(self, x_t: torch.Tensor, t: int, condition=None, generator=None) -> torch.Tensor:
        """One DDPM ancestral step x_t -> x_{t-1} (Ho et al. 2020, eq. 11 with the posterior variance)."""
        x = self._check_batch(x_t, "x_t")
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= self.num_diffusion_steps:
            raise ValueError(f"t must be an integer in 1..{self.num_diffusion_steps}, got {t!r}")
        eps_fn = self.noise_predictor(condition, x.shape[0])
        with torch.no_grad():
            eps = eps_fn(x, torch.full((x.shape[0],), t, device=self.device))
        noise = torch.randn(x.shape, generator=generator, device=self.device)
        return ddpm_step(self.noise_schedule, x, t, t - 1, eps, noise)[0]

    def _shape(self, shape) -> tuple:
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape, *self.data_shape)
        shape = tuple(shape)
        if len(shape) != 1 + len(self.data_shape) or tuple(shape[1:]) != self.data_shape or not 1 <= shape[0] <= 100_000:
            raise ValueError(f"shape must be [B, {', '.join(map(str, self.data_shape))}] with 1 <= B <= 100000, got {list(shape)}")
        return shape

    def generate_progressive(self, shape, condition=None, use_guidance: bool = False, guidance_scale: float = 1.0,
                             reward_fn=None, *, seed: int | None = None, generator=None, **kwargs) -> Iterator[StepRecord]:  # fmt: skip
        """Yield a StepRecord per reverse step (see adiff.sampling.sample_progressive for the keywords:
        sampler, num_steps, eta, x_T, clip_x0, guidance_mode, recurrence, guidance_clip, cfg_scale)."""
        shape = self._shape(shape)
        if use_guidance and reward_fn is None:
            raise ValueError("use_guidance=True needs a reward_fn")
        if use_guidance:
            kwargs.update(reward_fn=reward_fn, guidance_scale=guidance_scale)
        if self.is_conditional and condition is not None and kwargs.get("cfg_scale") is None:
            kwargs["cfg_scale"] = 1.0
        eps_fn = self.noise_predictor(condition, shape[0])
        gen = generator if generator is not None else self.make_generator(seed)
        yield from sample_progressive(eps_fn, self.noise_schedule, shape, generator=gen, device=self.device, **kwargs)

    def generate(self, shape, condition=None, use_guidance: bool = False, guidance_scale: float = 1.0, reward_fn=None,
                 *, keep_every: int = 1, **kwargs) -> tuple[torch.Tensor, Trajectory]:  # fmt: skip
        """Sample x_0 [B, *data_shape]; the trajectory keeps every ``keep_every``-th step as CPU tensors."""
        rec = TrajectoryRecorder(keep_every)
        for step in self.generate_progressive(shape, condition, use_guidance, guidance_scale, reward_fn, **kwargs):
            rec.add(step)
        traj = rec.finish()
        return traj.final.to(self.device), traj

    # ------------------------------------------------------------------ adaptation hooks
    def register_adaptation_hook(self, hook: Callable) -> None:
        """hook(model, event) runs after every adaptation step."""
        if not callable(hook):
            raise ValueError(f"hook must be callable, got {type(hook).__name__}")
        self.adaptation_hooks.append(hook)

    def adapt_progressive(self, reward_fn, num_steps: int, adaptation_config: dict | None = None, data=None, sample_kwargs=None):
        """Reward-guided fine-tuning as a generator of AdaptationEvents (see adiff.adaptation.Adapter)."""
        from .steering.adaptation import Adapter

        adapter = Adapter(self, reward_fn, adaptation_config, data, sample_kwargs)
        yield from adapter.run(num_steps)

    def adapt(self, task, num_steps: int, reward_fn, adaptation_config: dict | None = None) -> dict:
        """The design's adapt(): fine-tune towards p(x) exp(lambda r(x)) and return per-step metrics.
        ``task`` is the dataset to replay, as (x, labels) tensors or a dataset name, or None (base-model samples)."""
        data = task
        if isinstance(task, str):
            from .data import make_dataset

            data = make_dataset(task, 20_000, seed=0)
        metrics = {"reward_mean": [], "reward_max": [], "loss": [], "distance_to_data": [], "reward_queries": []}
        for ev in self.adapt_progressive(reward_fn, num_steps, adaptation_config, data):
            for k in metrics:
                metrics[k].append(getattr(ev, k))
        return metrics

    # ------------------------------------------------------------------ state
    def get_state_dict(self) -> dict:
        return {
            "config": dict(self.config),
            "denoiser": {k: v.detach().cpu().clone() for k, v in self.denoiser.state_dict().items()},
            "ema": {k: v.detach().cpu().clone() for k, v in self.ema.module.state_dict().items()},
            "training_step": self.training_step,
            "adaptation_step": self.adaptation_step,
        }

    def load_state_dict(self, state: dict) -> None:
        """Load weights and counters; a config of another architecture, a mismatched or non-finite tensor, or a bad
        counter raises and leaves the model unchanged (checked against this model's own tensors: no copy is built)."""
        if not isinstance(state, dict) or "denoiser" not in state or "config" not in state:
            raise ValueError("state must be a dict with 'config' and 'denoiser' (from get_state_dict)")
        other = ModelConfig.from_dict({**state["config"], "device": "cpu"})
        for f in ARCH_FIELDS:
            if getattr(other, f) != getattr(self.cfg, f):
                raise ValueError(f"state config field '{f}' is {getattr(other, f)!r}, this model has {getattr(self.cfg, f)!r}")
        own = {k: tuple(v.shape) for k, v in self.denoiser.state_dict().items()}
        parts = {"denoiser": state["denoiser"], "ema": state.get("ema", state["denoiser"])}
        for part, sd in parts.items():
            if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
                raise ValueError(f"state '{part}' must be a dict of tensors")
            check_shapes({k: tuple(v.shape) for k, v in sd.items()}, own, f"state '{part}'")
            checkpoints.check_finite(sd, f"state '{part}'")
        counters = checkpoints.check_counters({k: state.get(k, 0) for k in checkpoints.COUNTERS}, "state")
        with torch.no_grad():
            self.denoiser.load_state_dict(parts["denoiser"])
            self.ema.module.load_state_dict(parts["ema"])
        self.training_step, self.adaptation_step = counters["training_step"], counters["adaptation_step"]

    def save(self, path, extra: dict | None = None, ema_only: bool = False):
        """Write a single .safetensors checkpoint (weights, EMA weights; config, counters, schedule as JSON).
        ``ema_only`` stores just the EMA weights (half the size; a loaded model then starts from them)."""
        st = self.get_state_dict()
        tensors = {f"ema.{k}": v for k, v in st["ema"].items()}
        if not ema_only:
            tensors.update({f"denoiser.{k}": v for k, v in st["denoiser"].items()})
        meta = {
            "config": self.config,
            "counters": {"training_step": self.training_step, "adaptation_step": self.adaptation_step},
            "schedule": self.noise_schedule.to_dict(),
            "extra": extra or {},
        }
        return checkpoints.save_checkpoint(path, tensors, meta)

    @classmethod
    def load(cls, source, device: str | None = None, budget: Budget | None = None) -> "DiffusionModel":
        """Rebuild a model from a checkpoint (a path, bytes, or an opened CheckpointFile) with no other arguments.
        ``device`` overrides the stored one (default "auto", so a checkpoint made on a GPU loads on a CPU).
        Before anything is built, the config must fit ``budget`` (default: adiff.nn.budget.DEFAULT_BUDGET) and the
        file's tensor names and shapes must be those the config implies; weights must be finite.  Raises
        CheckpointError, having allocated nothing but the file's own tensors."""
        ckpt = source if isinstance(source, checkpoints.CheckpointFile) else checkpoints.open_checkpoint(source)
        cfg = admit_checkpoint(ckpt, device or "auto", budget or DEFAULT_BUDGET)  # nothing is built before this
        tensors = ckpt.tensors()
        ema = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        raw = {k[len("denoiser."):]: v for k, v in tensors.items() if k.startswith("denoiser.")}
        model = cls(cfg)
        model.load_state_dict({"config": cfg.to_dict(), "denoiser": raw or ema, "ema": ema or raw, **ckpt.counters})
        model.metadata = dict(ckpt.extra)
        return model

    def clone(self, device: str | None = None) -> "DiffusionModel":
        """An independent copy (weights, EMA, counters; no optimiser state, an empty buffer) for a user session."""
        config = dict(self.config)
        if device is not None:
            config["device"] = device
        twin = DiffusionModel(config)
        twin.load_state_dict({"config": self.config, "denoiser": self.denoiser.state_dict(),
                              "ema": self.ema.module.state_dict(), "training_step": self.training_step,
                              "adaptation_step": self.adaptation_step})  # copied into the twin's own tensors  # fmt: skip
        twin.metadata = dict(getattr(self, "metadata", {}))
        return twin

    def __repr__(self) -> str:
        return (f"DiffusionModel({self.model_type}, data_shape={list(self.data_shape)}, T={self.num_diffusion_steps}, "
                f"schedule={self.cfg.noise_schedule}, params={self.num_parameters}, device={self.device})")  # fmt: skip
