"""Reward-guided adaptation: fine-tune a diffusion model towards the reward-tilted distribution, live, one event per
step.

The target.  p_lambda(x) = p(x) exp(lambda r(x)) / Z,  Z = E_p[exp(lambda r)], is the maximiser of the KL-regularised
reward E_q[r] - KL(q || p) / lambda (the Gibbs variational principle, log E_p[e^f] = max_q E_q[f] - KL(q || p) with
f = lambda r; the objective of reward fine-tuning in Uehara et al. 2024, "Fine-tuning of continuous-time diffusion
models as entropy-regularized control", and Domingo-Enrich et al., ICLR 2025, "Adjoint matching").  lambda < 0
tilts away from high rewards; lambda = 0 is p.  The app's Guidance tab draws the same target by reweighting data.

The fixed point.  The denoising loss over weighted examples, sum_i w_i |f_theta(x_t, t) - target_i|^2
(adiff/diffusion/losses.py), is minimised at every (x_t, t) by the conditional expectation of the target under the
weighted mixture M of the examples, M = sum_i w_i delta(x0_i) / sum_i w_i (Vincent 2011; Ho et al. 2020, eq. 14).
This holds for every prediction type and both processes: each target (eps, x0, v = alpha eps - sigma x0, the flow's
velocity eps - x0) is linear in (x0, eps) given x_t, and the per-sample weights of the "sample" loss depend on t
only.  So the model converges to the denoiser of M, whatever M is, and adaptation is right iff M = p_lambda at every
step, however long the run, whatever the model currently samples.

Why the old fixed point was not p_lambda (measured, see the end of this docstring).  Three parts of its batch each
moved M off the target, and one of them moved it further the longer the run went:
  * the loss replayed the app's top-k buffer of the best samples ever seen, drawn by priority and reweighted by
    exp(lambda r) / q only within the draw.  A top-k buffer is p_lambda truncated above its threshold, and the
    threshold rises as samples accumulate: M tilted further every step, a compounding tilt towards argmax r, the
    same feedback loop as retraining on one's own reward-curated samples, which provably converges to the reward's
    maximisers (Ferbach, Bertrand, Bose & Gidel, "Self-consuming generative models with curated data provably
    optimize human preferences", NeurIPS 2024: on curated samples alone the expected reward rises each round and
    the model collapses onto the maximisers) unless a share of real data stays in every round (which, they show,
    keeps the model close to the data distribution).  One unclipped base-model sample at
    x = 29 became the buffer's best and was refed with nearly all of its weight at every later step;
  * the fresh samples were self-normalised within the batch (weights exp(lambda r_i) / mean_batch exp(lambda r)):
    a ratio estimate with an O(1/n) under-tilt, and one extreme sample takes all of the batch's fresh weight;
  * the anchor |eps_theta - eps_base|^2 averages noise predictions pointwise, i.e. scores: at t -> 0 its fixed
    point is p exp(lambda r / (1 + anchor)), not p_lambda.

The batch now.  Nothing the adapted model samples ever enters the loss: the fitted mixture M is a fixed function of
the data, the frozen base model and lambda, so there is no feedback loop to compound.  With R the reference pool (the
data, or without data a pool of base-model samples), Z^ = mean_R exp(lambda r) and w(x) = min(exp(lambda r(x)) / Z^,
w_max), w_max = max_R exp(lambda r) / Z^, the importance weight p_lambda / p:
  * replay (replay_share, 0.7): real data, R resampled with probabilities proportional to exp(lambda r) (sampling-
    importance resampling, Rubin 1988); weight 1.  The real-data share is what keeps M on p_lambda where the base
    model is wrong (exp(lambda r) also multiplies the base model's density where the data has none, and r = x is
    unbounded), it holds the low-variance rows (weight 1, where importance weights are heavy-tailed), and it is the
    real data that Ferbach et al. show keeps iterated retraining stable;
  * fresh (the rest): new samples of the FROZEN base model (the reward queries; p approximately); weight w(x), NOT
    renormalised within the batch (Z^ comes from the large pool R: measured on the exact 8-gaussians mixture,
    lambda = 2, within-batch normalising gave 98.9% of the tilted mean reward at n = 64, 94% at n = 13).  The cap
    w_max bounds the tilt of the base model's own errors to the largest the data supports;
  * buffer (buffer_share, 0.2): a reservoir of all earlier fresh samples kept by priority sampling with the weights
    w (reservoir.py, Duffield, Lund & Thorup 2007), drawn with probabilities proportional to max(w_i, tau); weight 1.
    Its draws describe the whole weighted stream of base samples, i.e. p_lambda, however many steps went by.
Each part's weighted mixture is (an estimate of) p_lambda, so any mixture of them is too: the shares trade variance,
not the fixed point.  The prioritised TrajectoryBuffer of the best samples is what the app shows; it never enters the
loss.  DPS-guided fresh samples (guided_sampling) have no known density, hence no weight: they fill the shown buffer
but are not trained on (from the 8gaussians preset, lambda = 2, DPS gives 114% of the tilted mean reward at MMD^2
3.4e-2 to p_lambda); the batch is then the replay rows alone.  anchor_weight defaults to 0 (above).  An EMA of the
weights smooths what is evaluated; samples are drawn at lambda = 0 (the same seed) after each step; ``reset()``
restores the base model.  tests/test_adaptation.py checks the batch rows over 200 steps against the exact tilt (a
top-k buffer fails it), and small flow / VP models of every prediction type against the exact tilt of a Gaussian
mixture (fresh samples from the adapted model, the compounding loop, fail it).

What went wrong before (bench/bench_adaptation.py on 8gaussians, r = x, lambda = 2, unclipped DDIM-50, old code:
top-k buffer drawn by priority and reweighted by exp(lambda r) / q within the draw, fresh samples self-normalised
within the batch, anchor 0.05): on target at step 125 (94% of the gain, MMD^2 1.6e-3), then one base-model sample
at x = 29.2 (reward 29) took all of its batch's fresh weight (64 of 64) and, as the buffer's best, was redrawn at
every later step with nearly all of the buffer's weight; from step 150 the model put 3-22% of its samples beyond |x| = 4
(up to |x| = 159): 211% of the gain at step 200, 150-210% up to step 1250.  With the preset's clip_x0 = 4 the
same kind of outlier sits at x = 4 and is redrawn at every step; that run stayed at 93-98% of the gain to step 350
while the buffer's lowest reward rose from 1.26 (step 50) to 2.06 (step 350).  The truncation shows with a larger
buffer share: the rows of 200 batches (replay 0.2, buffer 0.6, capacity 100, no training) described 101% of the
gain at MMD^2 1.5e-2 over steps 1-40 and 400% at 0.19 over steps 161-200; with the weights above 93-98% at
<= 5.8e-3 in every window (tests/test_adaptation.py).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import torch

from ..diffusion.losses import per_sample_loss
from ..diffusion.parameterization import Predictor
from ..eval.metrics import MMDReference
from ..samplers import default_solver, sample
from .buffer import BufferSnapshot, TrajectoryBuffer
from .guidance import GuidanceConfig, RewardGuidance
from .reservoir import WeightedReservoir

__all__ = ["AdaptationConfig", "AdaptationEvent", "Adapter"]


@dataclass(frozen=True)
class AdaptationConfig:
    learning_rate: float = 2e-4  # Adam step size (pre-training used 2e-3)
    batch_size: int = 256  # training examples per step
    guidance_scale: float = 2.0  # lambda: the target is p(x) exp(lambda r(x))
    replay_share: float = 0.7  # share of the batch from the data resampled by exp(lambda r)
    buffer_share: float = 0.2  # share from the reservoir of earlier fresh samples (the rest: fresh samples)
    anchor_weight: float = 0.0  # weight of |eps_theta - eps_base|^2; > 0 moves the fixed point (see above)
    buffer_capacity: int = 1000  # samples kept in the buffer shown (the best) and in the reservoir
    buffer_temperature: float = 1.0  # softmax temperature of the shown buffer's z-scored priorities
    guided_sampling: bool = False  # draw fresh samples with DPS guidance at lambda: shown, not trained on
    sample_steps: int = 50  # steps of the process's default solver for fresh and evaluation samples
    eval_samples: int = 256  # samples drawn at lambda = 0 after each step (fixed seed)
    eval_every: int = 1  # evaluate every k steps
    ema_decay: float = 0.99  # EMA of the weights during adaptation
    warmup_steps: int = 0  # learning rate ramped up linearly over the first steps (Adam's first steps move every
    # weight by about the full learning rate, whatever its gradient: a large model can jump at step 1)
    grad_clip: float = 1.0
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict | None) -> AdaptationConfig:
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"adaptation_config field {unknown[0]!r} is unknown (value {d[unknown[0]]!r})")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def num(name, lo, hi, lo_open=False):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v > hi
                or v < lo
                or (lo_open and v == lo)
            ):
                raise ValueError(
                    f"adaptation field '{name}' must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}"
                )

        def integer(name, lo, hi):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"adaptation field '{name}' must be an integer in {lo}..{hi}, got {v!r}")

        num("learning_rate", 0, 0.1, lo_open=True)
        integer("batch_size", 4, 4096)
        num("guidance_scale", -100, 100)
        num("replay_share", 0, 1)
        num("buffer_share", 0, 1)
        if self.replay_share + self.buffer_share > 1:
            raise ValueError(
                f"adaptation fields 'replay_share' + 'buffer_share' must be <= 1, got {self.replay_share} + {self.buffer_share}"
            )
        num("anchor_weight", 0, 100)
        integer("buffer_capacity", 1, 100_000)
        num("buffer_temperature", 0, 1e3, lo_open=True)
        if not isinstance(self.guided_sampling, bool):
            raise ValueError(f"adaptation field 'guided_sampling' must be true or false, got {self.guided_sampling!r}")
        if self.guided_sampling and self.replay_share == 0:
            raise ValueError(
                "adaptation field 'replay_share' must be > 0 with guided_sampling (guided samples are shown, "
                "not trained on), got 0"
            )
        integer("sample_steps", 1, 1000)
        integer("eval_samples", 2, 10_000)
        integer("eval_every", 1, 10_000)
        integer("warmup_steps", 0, 100_000)
        num("ema_decay", 0, 1)
        num("grad_clip", 0, 1e6)
        integer("seed", 0, 2**31 - 1)


@dataclass(frozen=True)
class AdaptationEvent:
    step: int  # adaptation steps done
    reward_mean: float  # of the evaluation samples (lambda = 0, fixed seed)
    reward_max: float
    loss: float  # weighted diffusion loss + anchor loss of this step
    distance_to_data: float  # MMD^2 of the evaluation samples to the data (or base samples)
    distance_to_target: float  # MMD^2 to the data weighted by exp(lambda r), an estimate of p_lambda
    reward_queries: int  # rewards computed on generated samples so far
    buffer: BufferSnapshot
    samples: torch.Tensor  # evaluation samples [n, *data_shape] on the CPU
    fresh_reward_mean: float  # mean reward of this step's fresh samples
    distance_to_data_se: float = math.nan  # the standard errors of the two distances (MMDReference.estimate)
    distance_to_target_se: float = math.nan


class Adapter:
    """Adapts ``model`` (a session's own copy) to ``reward_fn``; keeps a frozen copy of the base weights.

    data: (x [N, *data_shape], labels [N] | None) real data for replay; None -> a pool of base-model samples.
    sample_kwargs: extra sampler keywords for fresh and evaluation samples, e.g. a preset's {"clip_x0": 1.0}."""

    def __init__(
        self,
        model,
        reward_fn: Callable,
        config: AdaptationConfig | dict | None = None,
        data=None,
        sample_kwargs: dict | None = None,
    ):
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable, got {type(reward_fn).__name__}")
        self.model, self.reward_fn = model, reward_fn
        self.sample_kwargs = {k: v for k, v in (sample_kwargs or {}).items() if k in ("clip_x0",)}
        self.cfg = config if isinstance(config, AdaptationConfig) else AdaptationConfig.from_dict(config)
        self.device = model.device
        self.base_state = model.get_state_dict()
        self.base_net = copy.deepcopy(model.ema.module).eval().requires_grad_(False)
        self.buffer = TrajectoryBuffer(self.cfg.buffer_capacity, self.cfg.buffer_temperature)  # what the app shows
        self.reservoir = WeightedReservoir(self.cfg.buffer_capacity)  # what the loss replays
        model.trajectory_buffer = self.buffer
        self.gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        self.cpu_gen = torch.Generator().manual_seed(self.cfg.seed)  # the buffer lives on the CPU
        self.reward_queries = 0
        self.steps = 0
        self._reference(data)
        self._start_optimizer()
        self.base_samples = self._evaluate_samples()  # "before", from the same seed as every later evaluation

    # ------------------------------------------------------------------ set-up
    def _labels_for(self, n: int) -> torch.Tensor | None:
        """Generated samples of a conditional model use the null label: adaptation tilts the model's
        unconditional distribution (class-conditional ones follow through the replayed labelled data)."""
        if not self.model.is_conditional:
            return None
        return torch.full((n,), self.model.num_classes, dtype=torch.long, device=self.device)

    def _reference(self, data) -> None:
        """The reference pool R (the data, or base-model samples): replay draws from it, and it fixes the importance
        weights' normaliser Z^ = mean_R exp(lambda r) and their cap w_max = max_R exp(lambda r) / Z^."""
        if data is not None:
            x, labels = data
            self.ref_x = self.model._check_batch(x, "data")
            self.ref_labels = (
                None if labels is None or not self.model.is_conditional else torch.as_tensor(labels).to(self.device)
            )
        else:  # a pool of base-model samples stands in for the data
            self.ref_labels = self._labels_for(2048)
            self.ref_x = self._sample(2048, self.ref_labels, self.gen)
        with torch.no_grad():
            self.ref_rewards = self._reward(self.ref_x, count=False)
        log_w = self.cfg.guidance_scale * self.ref_rewards.double()  # [N]
        self.log_z = float(torch.logsumexp(log_w, 0)) - math.log(len(log_w))
        self.log_w_max = float(log_w.max()) - self.log_z
        self.ref_weights = torch.softmax(log_w, 0)  # replay probabilities, proportional to exp(lambda r)
        n_data = n_target = min(len(self.ref_x), 2000)
        self.data_reference = MMDReference(self.ref_x[:n_data].cpu())
        self.target_reference = MMDReference(self.ref_x[:n_target].cpu(), self.ref_weights[:n_target].cpu())

    def _start_optimizer(self) -> None:
        self.model.denoiser.load_state_dict(self.model.ema.module.state_dict())  # adapt from the sampling weights
        self.optimizer = torch.optim.Adam(self.model.denoiser.parameters(), lr=self.cfg.learning_rate)
        self.model.ema.reset(self.model.denoiser)
        self.model.ema.decay = self.cfg.ema_decay

    # ------------------------------------------------------------------ pieces
    def _reward(self, x: torch.Tensor, count: bool = True) -> torch.Tensor:
        r = self.reward_fn(x)
        if not torch.is_tensor(r) or r.shape != (x.shape[0],):
            raise ValueError(
                f"reward_fn must return one reward per sample [{x.shape[0]}], got {getattr(r, 'shape', type(r))}"
            )
        if count:
            self.reward_queries += x.shape[0]
        return torch.nan_to_num(r.detach().float(), nan=-1e6, posinf=1e6, neginf=-1e6)

    def _log_weight(self, rewards: torch.Tensor) -> torch.Tensor:
        """log w = log min(exp(lambda r) / Z^, w_max) [n] float64: the importance weight p_lambda / p of a sample of p."""
        return (self.cfg.guidance_scale * rewards.double() - self.log_z).clamp(max=self.log_w_max)

    def _sample(self, n: int, labels, generator, net=None, guided: bool = False) -> torch.Tensor:
        model, process = self.model, self.model.process
        net = net or self.base_net

        def run(x, t):
            with model.autocast():
                return net(x, process.model_time(t, device=x.device), labels).float()

        clip = self.sample_kwargs.get("clip_x0")
        predict = Predictor(run, process, model.prediction_type, clip)
        if guided:
            predict = RewardGuidance(predict, process, GuidanceConfig(self.reward_fn, self.cfg.guidance_scale), clip)
        x = sample(
            predict,
            process,
            (n, *model.data_shape),
            sampler=default_solver(process),
            num_steps=min(self.cfg.sample_steps, process.max_steps),
            generator=generator,
            device=self.device,
        )
        return x.detach()

    def _evaluate_samples(self) -> torch.Tensor:
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)  # the same noise every time
        return self._sample(
            self.cfg.eval_samples, self._labels_for(self.cfg.eval_samples), gen, net=self.model.ema.module
        )

    def _batch(self):
        """(x [b, ...], labels [b] | None, weights [b], fresh reward mean): rows whose weighted mixture is p_lambda
        (see the module docstring); b = batch_size, or the replay rows only with guided fresh samples."""
        B, guided = self.cfg.batch_size, self.cfg.guided_sampling
        n_rep = int(round(B * self.cfg.replay_share))
        n_res = int(round(B * self.cfg.buffer_share)) if len(self.reservoir) else 0
        n_fresh = max(B - n_rep - n_res, 1)
        xs, labs, ws = [], [], []
        if n_rep:  # replay: the reference pool resampled by exp(lambda r), weight 1
            idx = torch.multinomial(self.ref_weights.float(), n_rep, replacement=True, generator=self.gen)
            xs.append(self.ref_x[idx])
            if self.ref_labels is not None:  # half with their labels, half with the null label
                keep = torch.rand(n_rep, generator=self.gen, device=self.device) < 0.5
                labs.append(torch.where(keep, self.ref_labels[idx], self._labels_for(n_rep)))
            else:
                labs.append(self._labels_for(n_rep))
            ws.append(torch.ones(n_rep, device=self.device))
        if n_res:  # the reservoir of earlier fresh samples, drawn by their priority-sampling weights, weight 1
            rx, rl = self.reservoir.sample(n_res, generator=self.cpu_gen)
            xs.append(rx.to(self.device)), labs.append(rl.to(self.device) if self.model.is_conditional else None)
            ws.append(torch.ones(n_res, device=self.device))
        # fresh reward queries from the frozen base model
        lab = self._labels_for(n_fresh)
        fresh = self._sample(n_fresh, lab, self.gen, guided=guided)
        r = self._reward(fresh)
        self.buffer.add_batch(fresh.cpu(), r.cpu(), None if lab is None else [{"label": int(v)} for v in lab.tolist()])
        if not guided:  # guided samples have no known density, hence no weight: they are shown, not trained on
            log_w = self._log_weight(r)
            self.reservoir.add(fresh, log_w, lab, generator=self.cpu_gen)
            xs.append(fresh), labs.append(lab), ws.append(log_w.exp().float().to(self.device))
        if not xs:
            raise ValueError("adaptation batch is empty: guided_sampling needs replay_share > 0")
        x = torch.cat(xs)
        labels = None if not self.model.is_conditional else torch.cat(labs)
        return x, labels, torch.cat(ws), float(r.mean())

    def _loss(self, x, labels, weights) -> torch.Tensor:
        """sum_i w_i |f_theta - target|^2 / b + anchor * |f_theta - f_base|^2 at the same x_t, t (f: the network's
        output for the model's prediction type, target: its training target, diffusion/parameterization.py)."""
        model, process = self.model, self.model.process
        with model.autocast():
            per, (x_t, t, out) = per_sample_loss(
                model.denoiser, process, model.prediction_type, x, labels, self.gen, return_output=True
            )
            loss = (weights * per).mean()
            if self.cfg.anchor_weight > 0:
                with torch.no_grad():
                    base = self.base_net(x_t, process.model_time(t, device=x.device), labels).float()
                loss = loss + self.cfg.anchor_weight * ((out - base) ** 2).mean()
        return loss

    # ------------------------------------------------------------------ the loop
    def step(self) -> AdaptationEvent:
        """One adaptation step; the model is consistent (weights, EMA, counters) when it returns or raises."""
        self.model.denoiser.train()
        x, labels, weights, fresh_mean = self._batch()
        loss = self._loss(x, labels, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"adaptation loss is {float(loss)} at step {self.steps}: the update was skipped")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.denoiser.parameters(), self.cfg.grad_clip or float("inf"))
        for group in self.optimizer.param_groups:  # linear warm-up (Goyal et al. 2017, section 2.2)
            group["lr"] = self.cfg.learning_rate * min(1.0, (self.steps + 1) / (self.cfg.warmup_steps + 1))
        self.optimizer.step()
        self.model.ema.update(self.model.denoiser)
        self.steps += 1
        self.model.adaptation_step += 1
        self.model.denoiser.eval()
        if self.steps % self.cfg.eval_every == 0 or self.steps == 1 or not hasattr(self, "_last_eval"):
            samples = self._evaluate_samples()
            with torch.no_grad():
                r = self._reward(samples)
            self._last_eval = (
                samples.cpu(),
                float(r.mean()),
                float(r.max()),
                self.data_reference.estimate(samples),
                self.target_reference.estimate(samples),
            )
        s, rm, rx, dd, dt = self._last_eval
        q, buf = self.reward_queries, self.buffer.snapshot()
        event = AdaptationEvent(
            self.steps, rm, rx, float(loss.detach()), dd.value, dt.value, q, buf, s, fresh_mean, dd.se, dt.se
        )
        for hook in self.model.adaptation_hooks:
            hook(self.model, event)
        return event

    def run(self, num_steps: int) -> Iterator[AdaptationEvent]:
        """Yield one AdaptationEvent per step; stopping the iteration leaves the model consistent."""
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= 100_000:
            raise ValueError(f"num_steps must be an integer in 1..100000, got {num_steps!r}")
        for _ in range(num_steps):
            yield self.step()

    def reset(self) -> None:
        """Back to the base model: weights, EMA, counters; the buffer is emptied."""
        self.model.load_state_dict(self.base_state)
        self.buffer.clear()
        self.reservoir.clear()
        self.steps = 0
        self.reward_queries = 0
        self._start_optimizer()
        self.__dict__.pop("_last_eval", None)
