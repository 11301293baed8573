"""Teaching help shown in the app: one glossary of every term the UI uses (rendered once, as a closed section under
the header).  Plain text only; the tabs' "try this -> notice that" prompts are checked records in their lessons.py."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from adiff.samplers import SOLVERS

from .limits import LIMITS
from .summaries import DETECTABLE_SE, ROUGH_ESS

__all__ = ["GLOSSARY", "glossary_markdown", "page_script", "MAX_FRAMES", "STRAIGHTNESS"]

PAGE_JS = (Path(__file__).resolve().parent.parent / "assets" / "page.js").read_text()

# The numbers the glossary states that the app computes, each checked by a test (tests/test_glossary.py).
MAX_FRAMES = LIMITS.frames + 2  # a run keeps every k-th step (k = ceil(steps / frames)), the last step and the sample
# path straightness of the probability-flow ODE with the exact 8-gaussians denoiser (200 steps; VP: linear schedule,
# DDIM; flow: Euler), over 500 paths: 1.150-1.168 VP and 1.509-1.543 flow on seeds 0 and 1
STRAIGHTNESS = {"vp": 1.16, "flow": 1.52}


def _nfe_text() -> str:
    """NFE per step of every solver, from the registry (adiff.samplers.SOLVERS[..].nfe): "ddpm, ddim: 1 per step;
    heun: 2 per step, 1 for the last (10 steps: 19)"."""
    groups: dict[str, list[str]] = {}
    for name, solver in SOLVERS.items():
        per, ten = solver.nfe(11) - solver.nfe(10), solver.nfe(10)
        last = ten - per * 9
        text = f"{per} per step" + (f", {last} for the last (10 steps: {ten})" if last != per else "")
        groups.setdefault(text, []).append(name)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())


# term -> one or two plain sentences.  Keep the terms as the UI writes them.
GLOSSARY: dict[str, str] = {
    "x₀": "A clean data point (a 2-D point or a 16×16 glyph).",
    "t, T": "The diffusion time: t = 0 is clean data, t = T (often 1000) is (nearly) pure noise.",
    "x_t": "The noisy state at time t: x_t = √ᾱ_t · x₀ + σ_t · ε.",
    "ε (noise)": "Standard Gaussian noise, ε ~ N(0, I), mixed into the data by the forward process.",
    "β_t": "The variance of the noise added in step t (the schedule is the choice of β_1 … β_T).",
    "ᾱ_t": "The share of the signal's variance left at time t: ᾱ_t = ∏ₛ (1 − β_s). 1 at t = 0, ≈ 0 at t = T.",
    "σ_t (noise level)": "√(1 − ᾱ_t): how much of x_t is noise. The reverse-tab frames show it.",
    "SNR, log-SNR": "Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t), and its logarithm (falls as t grows).",
    "terminal SNR": "The SNR at t = T. It should be ≈ 0: otherwise x_T still contains data, yet sampling starts "
    "from pure noise (a mismatch the schedules tab warns about).",
    "0.999 clip": "Cosine schedules cap β_t at 0.999 near t = T so that ᾱ_t never reaches exactly 0.",
    "q(x_t)": "The distribution of x_t over all data points and all noise (the forward process's marginal).",
    "ε̂ (predicted noise)": "The network's guess ε_θ(x_t, t) of the noise in x_t.",
    "x̂₀ (predicted clean sample)": "Where the model thinks x_t came from: x̂₀ = (x_t − σ_t ε̂) / √ᾱ_t.",
    "score": "s(x, t) = ∇ₓ log p_t(x), the direction in which the noisy data gets denser; the model's score is "
    "−ε̂ / σ_t. The reverse tab draws it as arrows, normalised per frame (see the player's note).",
    "DDPM": "Ancestral sampling (Ho et al. 2020): each step moves x_t towards x̂₀ and adds fresh noise.",
    "DDIM": "A deterministic jump via x̂₀ (Song et al. 2021); works with far fewer steps than T.",
    "η (eta)": "DDIM's noise knob: 0 = deterministic, 1 = as much fresh noise per step as DDPM.",
    "steps": "How many reverse steps the sampler takes (≤ T); fewer is faster and rougher.",
    "seed": "Fixes the random numbers (x_T and any noise), so the same settings give the same picture.",
    "frame": f"One stored moment of a reverse run, scrubbed and played in your browser: at most {MAX_FRAMES} per "
    f"run (every k-th step, so that at most {LIMITS.frames} are kept, then the last step and the final sample).",
    "ideal (exact) denoiser": "For 8gaussians the data density is known, so the perfect ε̂ can be computed; the "
    "second row shows it at the same x_t.",
    "class, ∅": "Conditional models take a class y (a digit). ∅ (any) is the null class: unconditional samples; "
    "each = one sample of every class in turn.",
    "CFG": "Classifier-free guidance: ε = ε(∅) + w (ε(y) − ε(∅)), pushing samples towards class y.",
    "w (CFG scale)": "The strength of CFG: 1 = plain conditional model, > 1 = more typical of the class.",
    "reward r(x)": "A score of a sample you want high (a formula, a distance, a classifier's log-probability).",
    "λ (guidance scale)": "How strongly the reward tilts the target p(x)·e^{λ r(x)}; 0 = no reward guidance.",
    "tilted target p·e^{λr}": "The distribution guidance and adaptation aim at: the data reweighted by e^{λ r}. "
    "Its mean reward is the honest goal: above it is over-shooting.",
    "DPS": "Diffusion posterior sampling (Chung et al. 2023): the reward's gradient is taken through the "
    "denoiser, g = ∇_{x_t} r(x̂₀(x_t)), and λ σ_t g is subtracted from the noise prediction (ε̂ − λ σ_t g), which "
    "moves x̂₀ up the reward.",
    "mode (cheap, xt)": "Cheaper guidance gradients: cheap skips the denoiser's Jacobian, xt differentiates the "
    "reward of the noisy x_t itself; both over-shoot at large t.",
    "recurrence": "Repeat each guided step k times, re-noising in between (Bansal et al. 2023): slower, but the "
    "samples stay closer to the data while following the reward. In the Complete tab it is RePaint's resampling: "
    "the generated pixels get k chances to agree with the kept ones.",
    "inpainting (complete)": "Keep some pixels and let the model sample the rest (RePaint, Lugmayr et al. 2022): at "
    "every step the kept pixels of x_t are the kept image noised by the forward process, q(x_t | x₀ kept), and the "
    "model's step fills in the others, which see the kept ones through the network. At t = 0 the kept pixels are "
    "exactly the kept image.",
    "kept pixels": "What the Complete tab keeps: half of a real held-out digit, or where your strokes cover at least "
    "half of a model pixel (with 'and their box', also the blank inside the box around the ink).",
    "posterior correction": "Besides replacing the kept pixels, moves the other pixels' x̂₀ to what the kept ones "
    "imply under a Gaussian view of p(x₀ | x_t) (Rozet et al. 2024), a few conjugate-gradient steps through the "
    "denoiser's Jacobian. Off: RePaint's plain replacement, cheaper and further from the kept part.",
    "the class read": "The Complete tab's verdict on a completion: the class the shipped digit classifier (a small "
    "CNN trained apart from the diffusion model) gives the highest probability, with that probability.",
    "clipped fraction": "The share of guidance steps whose gradient was clipped (a very large push was capped).",
    "reward hacking": "Samples that score high by leaving the data (or fooling a classifier) instead of becoming "
    "good examples of what the reward means.",
    "ESS": "Effective sample size of the reweighted data that draws the tilted target: few effective points "
    f"(< {ROUGH_ESS}) mean its picture and its mean reward are rough.",
    "adaptation": "Fine-tuning your own copy of the model so that it samples the tilted target without guidance.",
    "replay share": "The share of each adaptation batch taken from real data, reweighted by e^{λ r}; the rest are "
    "fresh model samples and the buffer.",
    "buffer": "The best samples seen so far during adaptation, replayed in later batches.",
    "priority": "How often a buffer sample is replayed: higher reward, higher priority (the colour in the plot).",
    "anchor": "A penalty |ε_θ − ε_base|² that keeps the adapted model near the base model, so it does not forget "
    "the data while chasing the reward.",
    "learning rate": "The optimiser's step size (Adam): too large and the loss jumps, too small and nothing moves.",
    "batch size": "Examples per optimisation step.",
    "MMD²": "Maximum mean discrepancy between two sample sets (Gretton et al. 2012): about 0 when they look "
    "alike, larger when they differ. It is shown with its standard error (± SE, from both sets' sampling noise): "
    f"within {DETECTABLE_SE} SE of 0 is no detectable difference (the unbiased estimate can then be slightly "
    "negative).",
    "distance to data": "MMD² between model samples and real data: how far the model has drifted.",
    "ε-MSE loss": "The training loss |ε − ε_θ(x_t, t)|² averaged over data, t and noise (Ho et al. 2020, eq. 14).",
    "EMA": "An exponential moving average of the weights, used for sampling (smoother than the raw weights).",
    "conditional": "A model that also takes a class label (with label dropout, so CFG works).",
    "rectified flow": "The straight path x_t = (1 − t) x₀ + t ε, t ∈ [0, 1] (Liu et al. 2022; flow matching, "
    "Lipman et al. 2023): the network learns the velocity v = ε − x₀ and sampling integrates "
    "dx/dt = v̂ from t = 1 to 0.",
    "prediction type": "What the network outputs: ε (the noise), x₀ (the clean sample), v = α_t ε − σ_t x₀ "
    "(v-prediction, Salimans & Ho 2022) or a flow's velocity ε − x₀. One conversion turns any of "
    "them into ε̂ and x̂₀, so every solver works with every type.",
    "NFE": "Number of function (network) evaluations of a run: the cost that matters. Per solver: " + _nfe_text() + ".",
    "DPM-Solver++": "A second-order multistep ODE solver in log-SNR (Lu et al. 2022): it reuses the previous "
    "x̂₀, so it needs fewer steps than DDIM for the same accuracy (the compare tab's quality curve shows how many).",
    "Euler, Heun": "First- and second-order steps of the probability-flow ODE (Karras et al. 2022); on a flow, "
    "Euler is x ← x + Δt·v̂.",
    "reflow": "Straightening a flow (Liu et al. 2022): pair noises x₁ with where the flow's ODE takes them, x̂₀, "
    "and train a copy of the flow on the straight lines between them. Its paths straighten, so one Euler step "
    "lands near where the whole ODE did (the Train tab's 'Straighten a flow').",
    "pairs, ODE steps (reflow)": "How many noises reflow couples with their ODE endpoints, and how many "
    "DPM-Solver++ steps the source flow takes for each: more of either is a more faithful copy of the source.",
    "film (training)": f"Snapshots of a 2-D model while it trains, played in the player: every few steps (about "
    f"{LIMITS.film_frames} in a run), the learned score −ε̂/σ_t (or velocity −v̂) at σ_t = {LIMITS.film_sigma} and "
    f"{LIMITS.film_points} samples of the EMA weights from one fixed noise (DPM-Solver++, {LIMITS.film_steps} steps).",
    "path straightness": "Mean path length / mean displacement of the samples' paths from x_T to x₀: 1 = "
    "straight lines, which an ODE solver could cross in one step. A rectified flow trains on "
    "straight lines x_t = (1 − t)x₀ + tε, but the paths it samples follow the average velocity "
    "over all pairs through x_t and bend. By this measure a variance-preserving path bends less: "
    f"{STRAIGHTNESS['vp']:.2f} VP against {STRAIGHTNESS['flow']:.2f} flow for the exact 8-gaussians mixture's "
    "probability-flow paths (200 steps, 500 paths).",
    "log-likelihood by the probability-flow ODE": "log p_θ(x) of a diffusion or flow model (the density tab): the "
    "deterministic ODE carries x to noise z, and the density changes along the way by the divergence of its "
    "velocity u (instantaneous change of variables, Chen et al. 2018; Song et al. 2021, appendix D.2): log p_θ(x) = "
    "log N(z; 0, I) + ∫ div u dt, integrated here with RK4.",
    "exact divergence": "div u = Σᵢ ∂uᵢ/∂xᵢ, the trace of the velocity's Jacobian, from one backward pass per "
    "coordinate (two for a 2-D point) instead of a random (Hutchinson) estimate: no noise in log p_θ, but too "
    "costly for images.",
    "NLL (nats)": "Negative log-likelihood, −mean log p_θ(x) over fresh (held-out) data, in nats (natural log; "
    "1 nat = 1.44 bits). Lower is better; on average no model beats the data's own density, whose NLL is the "
    "data's entropy (8gaussians: log 8 + log(2πe·0.25²) ≈ 2.14 nats). Shown ± its standard error; the gap to "
    "the data's own on the same points has its own (paired) SE.",
    "KDE": "Kernel density estimate: the data's density taken as the average of a small Gaussian bump on each "
    "of many data points. The density tab uses it where the true density has no formula (moons, swissroll, …); "
    "its blur makes its NLL a little higher than the true entropy, so a model can score below it.",
}


def glossary_markdown() -> str:
    return "\n".join(f"- **{term}**: {text}" for term, text in GLOSSARY.items())


def page_script() -> gr.HTML:
    """An empty block whose script (assets/page.js) tells the user when a slider clamps a typed value."""
    return gr.HTML("", js_on_load=PAGE_JS, container=False, padding=False, elem_id="adiff-page-script")
