"""Steering a model towards a reward: sampling-time guidance (reward gradients, classifier-free guidance), rewards,
the expression language, the trajectory buffer, reward-guided adaptation, reflow and inpainting.

The public names are re-exported here: ``from adiff.steering import make_reward, compile_expression, Adapter``.
Inside the package every module imports from the module that defines a name (never through this file), so there is
no import cycle (tests/test_imports.py checks the whole tree)."""

from .adaptation import AdaptationConfig, AdaptationEvent, Adapter
from .buffer import MAX_CAPACITY, BufferSample, BufferSnapshot, TrajectoryBuffer
from .cfg import ConditionalModel
from .expressions import EXPRESSION_HELP, MAX_EXPRESSION_CHARS, ExpressionError, compile_expression
from .guidance import GUIDANCE_MODES, MAX_GUIDANCE_SCALE, GuidanceConfig, GuidanceInfo, RewardGuidance
from .inpaint import KnownPixels, inpaint, inpaint_progressive, top_half_mask
from .reflow import Coupling, ReflowEvent, couple, path_straightness_of, reflow_progressive
from .reservoir import WeightedReservoir
from .reward_type import KINDS, Reward
from .rewards import BUILTIN_REWARDS, MODE_RADIUS, REWARD_NAMES, RewardSpec, make_reward

__all__ = [
    "AdaptationConfig",
    "AdaptationEvent",
    "Adapter",
    "MAX_CAPACITY",
    "BufferSample",
    "BufferSnapshot",
    "TrajectoryBuffer",
    "ConditionalModel",
    "EXPRESSION_HELP",
    "MAX_EXPRESSION_CHARS",
    "ExpressionError",
    "compile_expression",
    "GUIDANCE_MODES",
    "MAX_GUIDANCE_SCALE",
    "GuidanceConfig",
    "GuidanceInfo",
    "RewardGuidance",
    "WeightedReservoir",
    "KINDS",
    "Reward",
    "BUILTIN_REWARDS",
    "MODE_RADIUS",
    "REWARD_NAMES",
    "RewardSpec",
    "make_reward",
    "KnownPixels",
    "inpaint",
    "inpaint_progressive",
    "top_half_mask",
    "Coupling",
    "ReflowEvent",
    "couple",
    "path_straightness_of",
    "reflow_progressive",
]
