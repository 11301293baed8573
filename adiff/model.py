"""DiffusionModel: the original design's public API, a thin facade over processes, prediction types, denoisers,
solvers, guidance, training and checkpoints."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import torch

from .data import make_dataset
from .diffusion.losses import per_sample_loss
from .diffusion.parameterization import Predictor
from .nn import checkpoints, inputs
from .nn.budget import DEFAULT_BUDGET, Budget, admit_checkpoint, check_shapes
from .nn.config import ModelConfig, resolve_device
from .nn.denoisers import build_denoiser
from .nn.ema import EMA
from .nn.optim import OptimizerConfig, TrainEvent, make_lr_scheduler, make_optimizer
from .samplers import StepRecord, Trajectory, TrajectoryRecorder, sample_progressive
from .samplers.ddpm import DDPM
from .steering.adaptation import Adapter
from .steering.buffer import TrajectoryBuffer
from .steering.cfg import ConditionalModel
from .steering.guidance import GuidanceConfig, RewardGuidance

__all__ = ["DiffusionModel"]
log = logging.getLogger(__name__)

_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}


class DiffusionModel:
    """A diffusion model: a forward process x_t = alpha(t) x_0 + sigma(t) eps (discrete VP with t = 1..T, or the
    rectified flow with t in [0, 1]) and a transformer f_theta(x_t, t[, y]) trained to predict eps, x_0, v or the
    flow velocity (config ``prediction_type``).  Sampling uses an EMA of the weights."""

    def __init__(self, config: dict | ModelConfig):
        self.cfg = ModelConfig.from_dict(config)
        self.config = self.cfg.to_dict()
        self.model_type = self.cfg.arch.model_type
        self.data_shape = tuple(self.cfg.arch.data_shape)
        self.device = resolve_device(self.cfg.device)
        self.precision = self.cfg.precision if self.device.type == "cuda" else "fp32"
        if self.precision != self.cfg.precision:
            log.info("precision %s applies on CUDA only; using fp32 on %s", self.cfg.precision, self.device)
        self.process = self.cfg.diffusion.make_process()
        self.denoiser = build_denoiser(self.cfg.arch).to(self.device)
        self.ema = EMA(self.denoiser, self.cfg.training.ema_decay)
        self.optimizer = None
        self.lr_scheduler = None
        self.optimizer_config: OptimizerConfig | None = None
        self._scaler = None
        self.training_step = 0
        self.adaptation_step = 0
        self.eval_metrics: dict = {}
        self.trajectory_buffer = TrajectoryBuffer(capacity=self.cfg.training.buffer_capacity)
        self.adaptation_hooks: list[Callable] = []
        self.metadata: dict = {}  # what a checkpoint carried besides the model (dataset, preset)

    # ------------------------------------------------------------------ helpers
    @property
    def is_conditional(self) -> bool:
        return self.model_type == "conditional"

    @property
    def num_classes(self) -> int | None:
        return self.cfg.arch.num_classes

    @property
    def prediction_type(self) -> str:
        return self.cfg.diffusion.prediction_type

    @property
    def noise_schedule(self):
        """The VP process's NoiseSchedule (None for a flow)."""
        return getattr(self.process, "schedule", None)

    @property
    def num_diffusion_steps(self) -> int | None:
        """T of the VP process (None for a flow, whose time is continuous)."""
        return self.cfg.diffusion.num_diffusion_steps

    @property
    def max_sampling_steps(self) -> int:
        return self.process.max_steps

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
        return inputs.check_batch(x, self.data_shape, self.device, name)

    def labels(self, condition, batch: int) -> torch.Tensor | None:
        """A condition (int, list or LongTensor [B]; None = the null class) as labels [B] on the device."""
        return inputs.labels_for(condition, batch, self.num_classes if self.is_conditional else None, self.device)

    # ------------------------------------------------------------------ the network as the samplers see it
    def net_fn(self, use_ema: bool = True) -> Callable:
        """fn(x_t [B, ...], t, labels=None) -> raw output, with t in the process's time (a Python number shared by
        the batch, or [B]); the process turns it into the network's input (time in one place)."""
        net = self.ema.module if use_ema else self.denoiser
        process = self.process

        def run(x, t, labels=None):
            # Samplers give every sample the same t: one time row then broadcasts through the adaLN conditioning
            # instead of being recomputed per sample (about 23% of a forward's FLOPs).
            if torch.is_tensor(t) and t.numel() > 1 and bool((t == t.reshape(-1)[0]).all()):
                t = t.reshape(-1)[:1]
            with self.autocast():
                return net(x, process.model_time(t, device=x.device), labels).float()

        return run

    def model_fn(self, condition=None, batch=None, use_ema: bool = True, cfg_scale: float | None = None, network=None):
        """The raw model fn(x_t, t) for a condition; conditional models give a ConditionalModel, mixed by
        classifier-free guidance when ``cfg_scale`` is set.  ``network``: a stand-in for ``net_fn(use_ema)`` with its
        signature, e.g. a session of adiff.serving.SamplingEngine, which batches the calls of concurrent runs."""
        if network is not None and getattr(network, "model", self) is not self:
            raise ValueError(f"network serves another model ({network.model!r}), not this one ({self!r})")
        run = self.net_fn(use_ema) if network is None else network
        labels = self.labels(condition, batch)  # raises for a condition on an unconditional model
        if not self.is_conditional:
            if cfg_scale is not None:
                raise ValueError("cfg_scale needs a conditional model")
            return lambda x, t: run(x, t)
        fn = ConditionalModel(run, labels, self.num_classes)
        return fn if cfg_scale is None else fn.with_cfg(cfg_scale)

    def predictor(
        self,
        condition=None,
        batch: int | None = None,
        use_ema: bool = True,
        cfg_scale: float | None = None,
        clip_x0: float | None = None,
        network=None,
    ) -> Predictor:
        """(x_t, t) -> Prediction(x0_hat, eps_hat) for this model's process and prediction type (network: model_fn)."""
        fn = self.model_fn(condition, batch, use_ema, cfg_scale, network)
        return Predictor(fn, self.process, self.prediction_type, clip_x0)

    def noise_predictor(self, condition=None, batch: int | None = None, use_ema: bool = True, cfg_scale=None):
        """eps_hat(x_t, t) (whatever the prediction type), e.g. for drawing the score -eps_hat / sigma."""
        predict = self.predictor(condition, batch, use_ema, cfg_scale)
        return lambda x, t: predict(x, t).eps

    # ------------------------------------------------------------------ the design's methods
    def setup_training(self, optimizer_config: dict | None = None) -> None:
        """AdamW/Adam with a warmup + cosine/linear (or constant) LR schedule; keys as in the design."""
        self.optimizer_config = OptimizerConfig.from_dict(optimizer_config)
        self.optimizer = make_optimizer(self.denoiser.parameters(), self.optimizer_config)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, self.optimizer_config)
        self._scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and self.precision == "fp16")

    def forward_diffusion(self, x_0: torch.Tensor, noise_level, generator: torch.Generator | None = None):
        """x_t = alpha x_0 + sigma eps at a noise level sigma in [0, 1] (float or [B]); alpha = sqrt(1 - sigma^2) for
        the VP process, 1 - sigma for the flow (where sigma = t).  Returns (x_t, eps)."""
        x0 = self._check_batch(x_0)
        sigma = torch.as_tensor(noise_level, dtype=torch.float32, device=self.device)
        if not torch.isfinite(sigma).all() or (sigma < 0).any() or (sigma > 1).any():
            raise ValueError(f"noise_level must lie in [0, 1], got {noise_level!r}")
        sigma = sigma.reshape(sigma.shape + (1,) * (x0.dim() - sigma.dim())) if sigma.dim() else sigma
        alpha = 1 - sigma if self.process.name == "flow" else torch.sqrt(1 - sigma**2)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        return alpha * x0 + sigma * noise, noise

    def q_sample(self, x_0: torch.Tensor, t, generator: torch.Generator | None = None):
        """x_t ~ q(x_t | x_0) at times t (a number or [B]); returns (x_t, eps)."""
        x0 = self._check_batch(x_0)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        return self.process.q_sample(x0, t, noise), noise

    def loss(self, x_0: torch.Tensor, condition=None, generator=None, model=None) -> torch.Tensor:
        """The denoising loss of a batch for this model's prediction type (adiff.diffusion.losses), with
        classifier-free-guidance label dropout for conditional models.  ``model``: the module to run (default
        the denoiser; e.g. a DistributedDataParallel wrapper of it)."""
        x0 = self._check_batch(x_0)
        labels = self.labels(condition, x0.shape[0])
        dropout = self.cfg.training.cfg_dropout
        if labels is not None and labels.dim() == 1 and self.denoiser.training and dropout > 0:
            drop = torch.rand(labels.shape, device=self.device, generator=generator) < dropout
            labels = torch.where(drop, torch.full_like(labels, self.num_classes), labels)
        with self.autocast():
            return per_sample_loss(
                model or self.denoiser, self.process, self.prediction_type, x0, labels, generator
            ).mean()

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

    def train_progressive(
        self, x: torch.Tensor, labels=None, num_steps: int = 1000, batch_size: int = 256, seed: int = 0
    ) -> Iterator[TrainEvent]:
        """Train on a dataset tensor x [N, *data_shape] (labels [N] for conditional models) with random minibatches of
        ``batch_size`` examples drawn with replacement (so a dataset smaller than a batch, e.g. 30 uploaded images,
        still gives full batches, each draw with its own t and noise), yielding a TrainEvent per step (the app draws
        its live loss curve from these)."""
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
            idx = torch.randint(0, x.shape[0], (batch_size,), device=self.device, generator=gen)  # [batch_size]
            yield self._update(x[idx], None if lab is None else lab[idx], gen)

    def single_denoising_step(self, x_t: torch.Tensor, t: int, condition=None, generator=None) -> torch.Tensor:
        """One DDPM ancestral step x_t -> x_{t-1} of the VP process (Ho et al. 2020, eq. 11, posterior variance)."""
        x = self._check_batch(x_t, "x_t")
        if self.process.name != "vp":
            raise ValueError(
                f"single_denoising_step is DDPM's step of the VP process; this model is a {self.process.name}: "
                "use generate_progressive"
            )
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= self.num_diffusion_steps:
            raise ValueError(f"t must be an integer in 1..{self.num_diffusion_steps}, got {t!r}")
        predict = self.predictor(condition, x.shape[0])
        return DDPM().step(predict, self.process, x, t, t - 1, generator=generator).x_prev

    def _shape(self, shape) -> tuple:
        return inputs.check_shape(shape, self.data_shape)

    def generate_progressive(
        self,
        shape,
        condition=None,
        use_guidance: bool = False,
        guidance_scale: float = 1.0,
        reward_fn=None,
        *,
        seed: int | None = None,
        generator=None,
        cfg_scale: float | None = None,
        clip_x0: float | None = None,
        guidance_mode: str = "dps",
        guidance_clip: float = 3.0,
        network=None,
        **kwargs,
    ) -> Iterator[StepRecord]:
        """Yield a StepRecord per step.  Sampling keywords go to adiff.samplers.sample_progressive: sampler (default:
        adiff.samplers.default_solver(process)), num_steps, eta, options, spacing, timesteps, recurrence, x_T.  cfg_scale: classifier-free guidance weight (conditional models);
        clip_x0: clamp x0_hat; use_guidance with reward_fn, guidance_scale, guidance_mode, guidance_clip: reward
        guidance towards p(x) exp(lambda r(x)) (adiff.steering.guidance).  network: see model_fn (e.g. an
        adiff.serving engine session: the same samples, with the network calls batched across concurrent runs)."""
        shape = self._shape(shape)
        if use_guidance and reward_fn is None:
            raise ValueError("use_guidance=True needs a reward_fn")
        if self.is_conditional and condition is not None and cfg_scale is None:
            cfg_scale = 1.0
        predict = self.predictor(condition, shape[0], cfg_scale=cfg_scale, clip_x0=clip_x0, network=network)
        if use_guidance:
            gcfg = GuidanceConfig(reward_fn, guidance_scale, guidance_mode, guidance_clip)
            predict = RewardGuidance(predict, self.process, gcfg, clip_x0)
        gen = generator if generator is not None else self.make_generator(seed)
        yield from sample_progressive(predict, self.process, shape, generator=gen, device=self.device, **kwargs)

    def generate(
        self,
        shape,
        condition=None,
        use_guidance: bool = False,
        guidance_scale: float = 1.0,
        reward_fn=None,
        *,
        keep_every: int = 1,
        **kwargs,
    ) -> tuple[torch.Tensor, Trajectory]:
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

    def adapt_progressive(
        self, reward_fn, num_steps: int, adaptation_config: dict | None = None, data=None, sample_kwargs=None
    ):
        """Reward-guided fine-tuning as a generator of AdaptationEvents (see adiff.steering.adaptation.Adapter)."""
        adapter = Adapter(self, reward_fn, adaptation_config, data, sample_kwargs)
        yield from adapter.run(num_steps)

    def adapt(self, task, num_steps: int, reward_fn, adaptation_config: dict | None = None) -> dict:
        """The design's adapt(): fine-tune towards p(x) exp(lambda r(x)) and return per-step metrics.
        ``task`` is the dataset to replay, as (x, labels) tensors or a dataset name, or None (base-model samples)."""
        data = make_dataset(task, 20_000, seed=0) if isinstance(task, str) else task
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
        """Load weights and counters; a config of another architecture or process, a mismatched or non-finite tensor,
        or a bad counter raises and leaves the model unchanged (checked against this model's own tensors: no copy is
        built)."""
        if not isinstance(state, dict) or "denoiser" not in state or "config" not in state:
            raise ValueError("state must be a dict with 'config' and 'denoiser' (from get_state_dict)")
        other = ModelConfig.from_dict({**checkpoints.migrate_config(state["config"]), "device": "cpu"})
        for f, v in vars(self.cfg.arch).items():
            if getattr(other.arch, f) != v:
                raise ValueError(f"state config field '{f}' is {getattr(other.arch, f)!r}, this model has {v!r}")
        if other.diffusion.prediction_type != self.prediction_type:
            raise ValueError(
                f"state config field 'prediction_type' is {other.diffusion.prediction_type!r}, "
                f"this model has {self.prediction_type!r}"
            )
        theirs = other.diffusion.make_process().to_dict()
        if theirs != self.process.to_dict():
            raise ValueError(f"state config describes the process {theirs}, this model has {self.process.to_dict()}")
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
        """Write a single .safetensors checkpoint (weights, EMA weights; config, counters, process as JSON).
        ``ema_only`` stores just the EMA weights (half the size; a loaded model then starts from them)."""
        st = self.get_state_dict()
        tensors = {f"ema.{k}": v for k, v in st["ema"].items()}
        if not ema_only:
            tensors.update({f"denoiser.{k}": v for k, v in st["denoiser"].items()})
        meta = {
            "config": self.config,
            "counters": {"training_step": self.training_step, "adaptation_step": self.adaptation_step},
            "process": self.process.to_dict(),
            "extra": extra or {},
        }
        return checkpoints.save_checkpoint(path, tensors, meta)

    @classmethod
    def load(cls, source, device: str | None = None, budget: Budget | None = None) -> DiffusionModel:
        """Rebuild a model from a checkpoint (a path, bytes, or an opened CheckpointFile) with no other arguments.
        ``device`` overrides the stored one (default "auto", so a checkpoint made on a GPU loads on a CPU).
        Checkpoints written before prediction types and processes existed load as the epsilon-prediction VP models
        they are (checkpoints.migrate_config).  Before anything is built, the config must fit ``budget`` (default:
        adiff.nn.budget.DEFAULT_BUDGET) and the file's tensor names and shapes must be those the config implies;
        weights must be finite.  Raises CheckpointError, having allocated nothing but the file's own tensors."""
        ckpt = source if isinstance(source, checkpoints.CheckpointFile) else checkpoints.open_checkpoint(source)
        cfg = admit_checkpoint(ckpt, device or "auto", budget or DEFAULT_BUDGET)  # nothing is built before this
        tensors = ckpt.tensors()
        ema = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
        raw = {k[len("denoiser.") :]: v for k, v in tensors.items() if k.startswith("denoiser.")}
        model = cls(cfg)
        try:
            model.load_state_dict({"config": cfg.to_dict(), "denoiser": raw or ema, "ema": ema or raw, **ckpt.counters})
        except ValueError as e:
            raise checkpoints.CheckpointError(f"checkpoint {ckpt.name} tensors do not match its config: {e}") from None
        model.metadata = dict(ckpt.extra)
        return model

    def clone(self, device: str | None = None) -> DiffusionModel:
        """An independent copy (weights, EMA, counters; no optimiser state, an empty buffer) for a user session."""
        twin = DiffusionModel(self.cfg if device is None else self.cfg.replace(device=device))
        twin.load_state_dict(
            {
                "config": self.config,
                "denoiser": self.denoiser.state_dict(),
                "ema": self.ema.module.state_dict(),
                "training_step": self.training_step,
                "adaptation_step": self.adaptation_step,
            }
        )  # copied into the twin's own tensors
        twin.metadata = dict(getattr(self, "metadata", {}))
        return twin

    def __repr__(self) -> str:
        return (
            f"DiffusionModel({self.model_type}, data_shape={list(self.data_shape)}, process={self.process!r}, "
            f"prediction_type={self.prediction_type}, params={self.num_parameters}, device={self.device})"
        )
