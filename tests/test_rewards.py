import math

import pytest
import torch

from adiff.steering import (
    BUILTIN_REWARDS,
    EXPRESSION_HELP,
    MODE_RADIUS,
    REWARD_NAMES,
    ExpressionError,
    Reward,
    compile_expression,
    make_reward,
)

POINT_REWARDS = [s.name for s in BUILTIN_REWARDS if s.kind == "points"]
IMAGE_REWARDS = [s.name for s in BUILTIN_REWARDS if s.kind == "images" and s.name != "classifier_logprob"]


def _points(n=64, seed=0):
    return (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) * 6 - 3).requires_grad_(True)


def _images(n=4, seed=0, size=16):
    return (torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1).requires_grad_(True)


def _value_and_grad(reward, x):
    r = reward(x)
    (g,) = torch.autograd.grad(r.sum(), x)
    return r, g


# ------------------------------------------------------------------ the catalogue
def test_catalogue_lists_every_builtin():
    assert set(REWARD_NAMES) == {
        "x_coordinate",
        "distance_to_target",
        "inside_ring",
        "inside_box",
        "mode",
        "brightness",
        "symmetry",
        "ink_in_region",
        "classifier_logprob",
    }
    for spec in BUILTIN_REWARDS:
        assert spec.kind in ("points", "images", "any") and spec.description and spec.formula
        with pytest.raises(TypeError):
            spec.defaults["x"] = 1  # read-only


@pytest.mark.parametrize("name", POINT_REWARDS + IMAGE_REWARDS)
def test_builtin_shape_finite_differentiable(name):
    reward = make_reward(name)
    assert isinstance(reward, Reward) and reward.name == name and reward.formula.startswith("r(")
    x = _points() if reward.kind == "points" else _images()
    r, g = _value_and_grad(reward, x)
    assert r.shape == (x.shape[0],) and r.dtype == x.dtype
    assert torch.isfinite(r).all() and torch.isfinite(g).all()
    assert g.abs().sum() > 0


@pytest.mark.parametrize("name", POINT_REWARDS)
def test_point_rewards_finite_gradients_at_special_points(name):
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [-30.0, 40.0]], requires_grad=True)
    r, g = _value_and_grad(make_reward(name), x)
    assert torch.isfinite(r).all() and torch.isfinite(g).all()


def test_x_coordinate():
    assert make_reward("x_coordinate")(torch.tensor([[1.0, 0.0]])).tolist() == [1.0]
    assert make_reward("x_coordinate", scale=-2)(torch.tensor([[1.5, 7.0]])).tolist() == [-3.0]


def test_distance_to_target_max_at_target():
    reward = make_reward("distance_to_target", target=(0.5, -1.0))
    x = torch.tensor([[0.5, -1.0], [0.0, 0.0], [2.0, 2.0], [0.6, -1.0]])
    r = reward(x)
    assert r[0] == 0 and r.argmax() == 0
    assert torch.allclose(r[1], torch.tensor(-(0.25 + 1.0)))
    x = torch.tensor([[0.5, -1.0]], requires_grad=True)
    assert torch.equal(_value_and_grad(reward, x)[1], torch.zeros(1, 2))


def test_inside_box_and_ring():
    box = make_reward("inside_box", box=(0, 2, 0, 2), sharpness=8)
    r = box(torch.tensor([[1.0, 1.0], [3.0, 1.0], [-1.0, -1.0], [1.0, 2.5]]))
    assert r[0] > 0.9 and (r[1:] < 0.1).all()
    ring = make_reward("inside_ring", r_in=1.0, r_out=2.0, sharpness=8)
    r = ring(torch.tensor([[1.5, 0.0], [0.0, -1.5], [0.0, 0.0], [3.0, 0.0]]))
    assert (r[:2] > 0.9).all() and (r[2:] < 0.1).all()


def test_mode():
    for k in range(8):
        reward = make_reward("mode", k=k)
        mu = MODE_RADIUS * torch.tensor([[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)]])
        angles = torch.arange(8) * math.pi / 4
        means = MODE_RADIUS * torch.stack([angles.cos(), angles.sin()], 1)
        assert reward(means).argmax() == k
        assert abs(float(reward(mu))) < 1e-6
    assert make_reward("mode", k=3.0).params["k"] == 3  # an integral float from a UI box


def test_image_rewards_make_sense():
    dark, light = -torch.ones(1, 1, 16, 16), torch.ones(1, 1, 16, 16)
    brightness = make_reward("brightness")
    assert brightness(dark) < brightness(torch.zeros(1, 1, 16, 16)) < brightness(light)

    g = torch.Generator().manual_seed(1)
    half = torch.rand(2, 1, 16, 8, generator=g) * 2 - 1
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    asymmetric = torch.cat([half, -half], dim=-1)
    sym = make_reward("symmetry")
    assert torch.allclose(sym(symmetric), torch.zeros(2))
    assert (sym(symmetric) > sym(asymmetric)).all()

    left = -torch.ones(1, 1, 16, 16)
    left[..., :8] = 1.0  # ink on the left half only
    ink = make_reward("ink_in_region")  # default: the left half
    assert ink(left).item() == 1.0 and ink(left.flip(-1)).item() == 0.0
    right = make_reward("ink_in_region", region=(0.0, 1.0, 0.5, 1.0))
    assert right(left).item() == 0.0
    corner = make_reward("ink_in_region", region=(0.0, 0.25, 0.0, 0.25))
    img = -torch.ones(1, 1, 16, 16)
    img[..., :2, :4] = 1.0  # half of the 4x4 top-left corner
    assert abs(corner(img).item() - 0.5) < 1e-6
    tiny = make_reward("ink_in_region", region=(0.0, 0.01, 0.0, 0.01))  # still at least one pixel
    assert tiny(light).item() == 1.0


def test_classifier_logprob():
    # needs adiff/eval/classifier.py and assets/glyph_classifier.safetensors (written separately)
    reward = make_reward("classifier_logprob", digit=3)
    x = _images(3)
    r, g = _value_and_grad(reward, x)
    assert r.shape == (3,) and (r <= 0).all() and torch.isfinite(g).all()
    assert reward(x.detach().double()).dtype == torch.float64
    assert torch.allclose(
        torch.stack([make_reward("classifier_logprob", digit=d)(x) for d in range(10)]).exp().sum(0),
        torch.ones(3),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match=r"shape \(2, 1, 12, 12\).*cannot read"):
        reward(torch.zeros(2, 1, 12, 12))  # 16x16 glyphs and 8x8 digits have a classifier; 12x12 has none


def test_kind_and_output_checks():
    points, images = make_reward("x_coordinate"), make_reward("brightness")
    with pytest.raises(ValueError, match=r"x must have shape \[B, 2\].*\(4, 3\)"):
        points(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"x must have shape \[B, C, H, W\].*\(4, 16, 16\)"):
        images(torch.zeros(4, 16, 16))
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        points(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        points([[0.0, 0.0]])
    bad = Reward("bad", "any", "returns the wrong shape", "r = x", lambda x: x)
    with pytest.raises(ValueError, match=r"must return shape \[B\]"):
        bad(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="kind"):
        Reward("k", "audio", "", "", lambda x: x)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("foo", {}, r"reward must be one of \[.*'x_coordinate'.*\], got 'foo'"),
        (None, {}, "reward must be one of"),
        ("x_coordinate", {"offset": 1.0}, "unknown parameter 'offset' for reward 'x_coordinate'"),
        ("brightness", {"scale": 2.0}, "unknown parameter 'scale'"),
        ("x_coordinate", {"scale": "2"}, "scale must be a finite number, got '2'"),
        ("x_coordinate", {"scale": math.nan}, "scale must be a finite number"),
        ("x_coordinate", {"scale": True}, "scale must be a finite number"),
        ("distance_to_target", {"target": (1.0,)}, r"target must be two finite numbers, got \(1.0,\)"),
        ("distance_to_target", {"target": (1.0, math.inf)}, "target must be two finite numbers"),
        ("distance_to_target", {"target": "ab"}, "target must be two finite numbers"),
        ("inside_ring", {"r_in": 2.0, "r_out": 1.0}, "r_in must be smaller than r_out"),
        ("inside_ring", {"sharpness": 0}, "sharpness must be a finite number > 0"),
        ("inside_box", {"box": (1, 0, 0, 1)}, "box must be"),
        ("mode", {"k": 8}, r"k must be an integer in 0..7, got 8"),
        ("mode", {"k": 1.5}, "k must be an integer"),
        ("ink_in_region", {"region": (0.5, 0.2, 0, 1)}, "region must be"),
        ("classifier_logprob", {"digit": 10}, r"digit must be an integer in 0..9, got 10"),
        ("classifier_logprob", {"device": "toaster"}, "device must be a torch device"),
    ],
)
def test_make_reward_validation(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_reward(name, **params)


def test_params_rebuild_the_reward():
    reward = make_reward("inside_box", box=[-1, 1, -1, 1], sharpness=3)
    again = make_reward(reward.name, **reward.params)
    x = _points()
    assert torch.equal(reward(x), again(x))


# ------------------------------------------------------------------ expressions
X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 2.0], [0.3, -0.7], [2.5, 1.5], [-2.0, -2.0]])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-((x-1)**2 + (y+0.5)**2)", lambda x, y: -((x - 1) ** 2 + (y + 0.5) ** 2)),
        ("sigmoid(4*x)", lambda x, y: torch.sigmoid(4 * x)),
        ("x > 0", lambda x, y: (x > 0).double()),
        ("0 < x <= 1", lambda x, y: ((x > 0) & (x <= 1)).double()),
        ("x != y and not y > 1", lambda x, y: ((x != y) & ~(y > 1)).double()),
        ("x < 0 or y < 0", lambda x, y: ((x < 0) | (y < 0)).double()),
        ("min(r, 2) * cos(theta)", lambda x, y: torch.clamp(torch.hypot(x, y), max=2) * torch.cos(torch.atan2(y, x))),
        ("r", lambda x, y: torch.hypot(x, y)),
        ("theta / pi", lambda x, y: torch.atan2(y, x) / math.pi),
        ("abs(x) + tanh(y) - exp(-x) * e", lambda x, y: x.abs() + torch.tanh(y) - torch.exp(-x) * math.e),
        ("max(x, y, 0.5)", lambda x, y: torch.maximum(torch.maximum(x, y), torch.tensor(0.5))),
        ("clamp(x, -1, 1)", lambda x, y: x.clamp(-1, 1)),
        ("x % 1.5 + 7 % 3", lambda x, y: torch.remainder(x, 1.5) + 1),
        ("x**3 - y**-2", lambda x, y: x**3 - torch.where(y == 0, torch.tensor(1e24), y**-2)),
        ("sin(x) / (1 + y*y)", lambda x, y: torch.sin(x) / (1 + y * y)),
        ("x if y > 0 else -r", lambda x, y: torch.where(y > 0, x, -torch.hypot(x, y))),
        ("2.5", lambda x, y: torch.full_like(x, 2.5)),
        ("  +x  ", lambda x, y: x),
    ],
)
def test_expression_values(text, expected):
    reward = compile_expression(text)
    assert reward.name == "expression" and reward.kind == "points" and reward.description == text
    assert reward.formula == "r(x, y) = " + text.strip()
    x = X.clone().requires_grad_(True)
    r, g = _value_and_grad(reward, x)
    want = expected(X[:, 0].double(), X[:, 1].double()).clamp(-1e15, 1e15).float()
    assert r.shape == (len(X),) and r.dtype == torch.float32
    assert torch.allclose(r, want, rtol=1e-5, atol=1e-6), (r, want)
    assert torch.isfinite(g).all()


def test_expression_gradient_is_analytic():
    reward = compile_expression("-((x-1)**2 + (y+0.5)**2)")
    x = X.clone().requires_grad_(True)
    _, g = _value_and_grad(reward, x)
    want = torch.stack([-2 * (X[:, 0] - 1), -2 * (X[:, 1] + 0.5)], dim=1)
    assert torch.allclose(g, want, atol=1e-6)


def test_comparisons_have_zero_gradient_but_stay_in_the_graph():
    x = X.clone().requires_grad_(True)
    r, g = _value_and_grad(compile_expression("x > 0"), x)
    assert torch.equal(g, torch.zeros_like(X))
    assert "zero gradient" in EXPRESSION_HELP


def test_expression_float64_input_and_no_grad():
    reward = compile_expression("x * y")
    x = X.double()
    assert reward(x).dtype == torch.float64
    assert torch.allclose(reward(x), x[:, 0] * x[:, 1])


@pytest.mark.parametrize(
    "text",
    [
        "log(x)",
        "sqrt(x)",
        "1/x",
        "exp(1000*x)",
        "x**-8",
        "x**0.5",
        "x**-0.5",
        "y % x",
        "log(r) * theta",
        "1/(1/(1/(1/(1/(1/(1/(1/(x-x)))))))) * y",
        "exp(exp(exp(exp(x))))",
        "x**8 * 1e6**8 * y**8",
        "sqrt(-r) + log(-r) + 1/(r-r)",
        "theta",
        "x / y",
        "-(r**8 + 1)**8 / (x - 0)",
    ],
)
def test_expression_never_nan(text):
    pts = torch.tensor(
        [[0.0, 0.0], [-1.0, -2.0], [1e-30, 0.0], [-1e-30, 5.0], [3.0, 0.0], [-3.0, -1e-8], [50.0, -50.0]]
    )
    x = pts.clone().requires_grad_(True)
    r, g = _value_and_grad(compile_expression(text), x)
    assert torch.isfinite(r).all(), r
    assert torch.isfinite(g).all(), g


def test_expression_safe_domains():
    at = torch.tensor([[0.0, 0.0], [-4.0, 0.0], [4.0, 0.0]])
    assert compile_expression("sqrt(x)")(at).tolist() == [0.0, 0.0, 2.0]
    assert torch.allclose(compile_expression("log(x)")(at), torch.tensor([math.log(1e-12)] * 2 + [math.log(4.0)]))
    assert compile_expression("1/x")(at)[1:].tolist() == [-0.25, 0.25]
    assert compile_expression("exp(1000*x)")(at)[0] == 1.0


@pytest.mark.parametrize(
    "text, match",
    [
        ("__import__('os').system('ls')", r"calling .*__import__.* is not allowed at column 1"),
        ("x.__class__", r"attribute access 'x.__class__' is not allowed at column 1"),
        ("().__class__.__bases__", "attribute access .* is not allowed at column 1"),
        ("open('/etc/passwd')", r"function 'open' is not allowed at column 1; allowed functions: abs"),
        ("print(x)", "function 'print' is not allowed"),
        ("lambda: 1", "lambda .*is not allowed at column 1"),
        ("[x for x in y]", "list comprehension .*is not allowed at column 1"),
        ("(x for x in y)", "generator expression .*is not allowed"),
        ("x**y", r"exponent 'y' is not allowed at column 4; the exponent of \*\* must be a number constant"),
        ("2**1000", r"exponent '1000' is not allowed at column 4"),
        ("x**(1/2)", "exponent .* is not allowed"),
        ("9" * 500, "expression is too long: 500 characters, at most 200"),
        ("1e308*x", r"constant '1e308' is not allowed at column 1; numbers must satisfy \|c\| <= 1e\+06"),
        ("x + 1e999", r"constant '1e999' is not allowed at column 5"),
        ("'a'", r"constant 'a' is not allowed at column 1; only numbers"),
        ("b'a' + x", "constant b'a' is not allowed"),
        ("True * x", "constant True is not allowed"),
        ("1j * x", "constant 1j is not allowed"),
        ("f(x)", "function 'f' is not allowed at column 1"),
        ("x(1)", "calling 'x' is not allowed"),
        ("sin", "using the function 'sin' as a value is not allowed"),
        ("1 + os", r"name 'os' is not allowed at column 5; allowed names: x, y, r, theta"),
        ("X + y", "name 'X' is not allowed at column 1"),
        ("__builtins__", "name '__builtins__' is not allowed"),
        ("(" * 100 + "x" + ")" * 100, "expression is too long"),
        ("-(" * 50 + "x" + ")" * 50, r"nested too deeply \(more than 30 levels\) at column"),
        ("-" * 150 + "x", "nested too deeply"),
        ("x;y", "syntax error at column 2"),
        ("x = 1", "syntax error"),
        ("import os", "syntax error"),
        ("x\ny", "syntax error"),
        ("", "expression is empty"),
        ("   ", "expression is empty"),
        ("x[0]", "subscript 'x\\[0\\]' is not allowed at column 1"),
        ("f'{x}'", "f-string .*is not allowed"),
        ("(y := 1)", r"assignment expression \(:=\) .*is not allowed at column 2"),
        ("max(*[x, y])", "starred argument .* is not allowed at column 5"),
        ("abs(x=1)", "keyword argument in abs.* is not allowed"),
        ("min(x)", r"min\(\) takes two or more arguments, got 1 at column 1"),
        ("clamp(x, 1)", r"clamp\(\) takes 3 arguments, got 2"),
        ("sqrt(x, y)", r"sqrt\(\) takes 1 argument, got 2"),
        ("x // 2", "operator // is not allowed at column 1"),
        ("x @ y", "operator @ is not allowed"),
        ("~x", "operator ~ is not allowed"),
        ("x is y", "comparison Is is not allowed"),
        ("x is 1", "comparison Is is not allowed"),  # a SyntaxWarning at parse time: must not escape
        ("1(2)", "calling '1' is not allowed"),
        ("'\\d' + x", "constant .* is not allowed"),
        ("x in y", "comparison In is not allowed"),
        ("(x, y)", "tuple .*is not allowed"),
        ("{x: y}", "dict .*is not allowed"),
        ("x\x00", "syntax error"),
        ("  1 + os", "name 'os' is not allowed at column 7"),
    ],
)
def test_expression_refused(text, match):
    with pytest.raises(ExpressionError, match=match):
        compile_expression(text)


def test_expression_error_is_a_value_error_with_column():
    with pytest.raises(ValueError) as info:
        compile_expression("x + y + os")
    assert isinstance(info.value, ExpressionError) and info.value.column == 9
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(3)
