"""Tests of interp.parsing: hostile text is rejected, and valid formulas give the expected SymPy expression.

The expected expressions are built directly from SymPy objects, never by parsing text, so a
passing round trip means the parser built what a person would write by hand.
"""

from __future__ import annotations

import ast
import builtins

import pytest
import sympy as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import interp
from interp import schedules
from interp.parsing import MAX_EXPONENT, MAX_LENGTH, parse_expression, parse_schedule
from interp.schedules import Schedule, t

a = sp.Symbol("a", real=True)
p = sp.Symbol("p", real=True)


# Hostile and malformed input.

HOSTILE = [
    ("__import__('os').system('echo hi')", r"only the listed functions may be called"),
    ("().__class__", r"Attribute is not allowed"),
    ("t.__class__", r"Attribute is not allowed"),
    ("t.__class__.__mro__[1].__subclasses__()", r"only the listed functions may be called"),
    ("sin.__globals__", r"Attribute is not allowed"),
    ("lambda: 1", r"Lambda is not allowed"),
    ("[1]", r"List is not allowed"),
    ("[x for x in t]", r"ListComp is not allowed"),
    ("{1: 2}", r"Dict is not allowed"),
    ("(t, 1)", r"Tuple is not allowed"),
    ("t[0]", r"Subscript is not allowed"),
    ('"a"', r"only integer and decimal numbers are allowed"),
    ("b'a'", r"only integer and decimal numbers are allowed"),
    ("f'{t}'", r"JoinedStr is not allowed"),
    ("1j", r"only integer and decimal numbers are allowed"),
    ("True", r"only integer and decimal numbers are allowed"),
    ("None", r"only integer and decimal numbers are allowed"),
    ("...", r"only integer and decimal numbers are allowed"),
    ("9**9**9", r"numeric exponent must lie in \[-100, 100\]"),
    ("2**(10**3)", r"numeric exponent must lie in \[-100, 100\]"),
    ("pi**pi**pi**pi", r"numeric exponent must lie in \[-100, 100\]"),
    ("(10**64)**64", r"must lie between 1e-300 and 1e\+300"),
    ("((2**-100)**100)**100", r"must lie between 1e-300 and 1e\+300"),
    ("exp(exp(exp(exp(100))))**2", r"must lie between 1e-300 and 1e\+300"),
    ("1e999", r"must lie between 1e-300 and 1e\+300"),
    ("9" * 400, r"must lie between 1e-300 and 1e\+300"),
    ("sympify('t')", r"sympify is not an allowed function"),
    ("eval('1')", r"eval is not an allowed function"),
    ("exec('1')", r"exec is not an allowed function"),
    ("open('/etc/passwd')", r"open is not an allowed function"),
    ("getattr(t, 'x')", r"getattr is not an allowed function"),
    ("__builtins__", r"not an allowed symbol, constant or function"),
    ("__import__", r"not an allowed symbol, constant or function"),
    ("x", r"not an allowed symbol, constant or function"),
    ("sin", r"the function sin must be called with one argument"),
    ("sin(x=t)", r"keyword arguments are not allowed"),
    ("sin(*t)", r"sin takes exactly one positional argument"),
    ("sin(t, t)", r"sin takes exactly one positional argument"),
    ("sin(t)(t)", r"only the listed functions may be called"),
    ("E.evalf()", r"only the listed functions may be called"),
    ("t if t else 1", r"IfExp is not allowed"),
    ("t < 1", r"Compare is not allowed"),
    ("t and 1", r"BoolOp is not allowed"),
    ("not t", r"the operator Not is not allowed"),
    ("~t", r"the operator Invert is not allowed"),
    ("t ^ 2", r"use \*\* for powers, not \^"),
    ("t // 2", r"use / for division"),
    ("t % 2", r"the remainder operator % is not supported"),
    ("t @ t", r"matrix products are not supported"),
    ("t := 1", r"not a valid formula"),
    ("t; 1", r"not a valid formula"),
    ("import os", r"not a valid formula"),
    ("sin(t", r"not a valid formula"),
    ("", r"must contain a formula"),
    ("   ", r"must contain a formula"),
    ("1/0", r"undefined or infinite"),
    ("log(0)*t", r"undefined or infinite"),
    ("t**(1/0)", r"the exponent is undefined"),
    ("-" * 499 + "t", r"nested too deeply"),
    ("(" * 201 + "t" + ")" * 201, r"not a valid formula|nested too deeply"),
]


@pytest.mark.parametrize(("text", "pattern"), HOSTILE, ids=[text[:40] for text, _ in HOSTILE])
def test_parse_expression_rejects_hostile_text(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_expression(text)


def test_parse_expression_rejection_names_offending_part():
    with pytest.raises(ValueError) as raised:
        parse_expression("sin(t) + t.__class__")

    message = str(raised.value)
    assert "'t.__class__'" in message, f"message does not quote the attribute access: {message}"
    assert "the functions sin, cos" in message, f"message does not list the allowed functions: {message}"


def test_parse_expression_rejects_long_text():
    accepted = "t" + " " * (MAX_LENGTH - 1)
    assert parse_expression(accepted) == t, "text of exactly MAX_LENGTH characters was not parsed"

    with pytest.raises(ValueError, match=rf"at most {MAX_LENGTH} characters, got {MAX_LENGTH + 1}"):
        parse_expression("t" + " " * MAX_LENGTH)


def test_parse_expression_accepts_exponent_limit():
    assert parse_expression(f"t**{MAX_EXPONENT}") == t**MAX_EXPONENT, "the largest allowed exponent was rejected"
    assert parse_expression(f"t**-{MAX_EXPONENT}") == t**-MAX_EXPONENT, "the most negative exponent was rejected"

    with pytest.raises(ValueError, match=r"numeric exponent"):
        parse_expression(f"t**{MAX_EXPONENT + 1}")


@pytest.mark.parametrize("text", [None, 1.5, b"t", sp.sin(t)], ids=["none", "float", "bytes", "sympy"])
def test_parse_expression_rejects_non_string(text):
    with pytest.raises(TypeError, match=r"text must be a string such as 'sin\(pi\*t/2\)'"):
        parse_expression(text)


@pytest.mark.parametrize(
    ("symbols", "error", "pattern"),
    [
        ("ta", TypeError, r"allowed_symbols must be a sequence of names.*got the string 'ta'"),
        (("t", 1), TypeError, r"a symbol name must be a string, got int"),
        (("t", "__class__"), ValueError, r"symbol name '__class__' must not start with an underscore"),
        (("t", "_a"), ValueError, r"symbol name '_a' must not start with an underscore"),
        (("t", "a b"), ValueError, r"symbol name 'a b' is not a Python identifier"),
        (("t", "lambda"), ValueError, r"symbol name 'lambda' is not a Python identifier"),
        (("t", "sin"), ValueError, r"symbol name 'sin' is already a function or constant"),
        (("t", "pi"), ValueError, r"symbol name 'pi' is already a function or constant"),
    ],
    ids=["string", "int", "dunder", "underscore", "space", "keyword", "function", "constant"],
)
def test_parse_expression_rejects_bad_symbol_names(symbols, error, pattern):
    with pytest.raises(error, match=pattern):
        parse_expression("t", allowed_symbols=symbols)


def test_parse_expression_never_calls_eval(monkeypatch):
    calls = []
    real_compile = builtins.compile

    def forbidden(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError(f"parse_expression called a forbidden evaluator with {args[:1]!r}")

    # ast.parse calls compile with PyCF_ONLY_AST, which builds a syntax tree and runs nothing.
    # Any other compile would produce code that could be run.
    def tree_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            return forbidden(source)
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", tree_only_compile)
    monkeypatch.setattr(sp, "sympify", forbidden)
    monkeypatch.setattr(sp, "parse_expr", forbidden)
    monkeypatch.setattr(sp.parsing.sympy_parser, "parse_expr", forbidden)

    parsed = parse_expression("sin(pi*t/2) + (1 - t)**0.5")
    monkeypatch.undo()

    assert calls == [], f"forbidden evaluators were called with {calls}"
    assert parsed == sp.sin(sp.pi * t / 2) + sp.sqrt(1 - t), f"parsed to {parsed}"


# Valid formulas.

VALID = [
    ("t", t),
    ("1 - t", 1 - t),
    ("sin(pi*t/2)", sp.sin(sp.pi * t / 2)),
    ("cos(pi * t / 2)", sp.cos(sp.pi * t / 2)),
    ("(1 - t)**0.5", sp.sqrt(1 - t)),
    ("(1-t)**1.5", (1 - t) ** sp.Rational(3, 2)),
    ("0.1*t + 0.9*t**2", sp.Rational(1, 10) * t + sp.Rational(9, 10) * t**2),
    ("1e-3*t", t / 1000),
    ("2.5e2", sp.Integer(250)),
    ("sqrt(t*(1 - t))", sp.sqrt(t * (1 - t))),
    ("sqrt((1 - t)**2 + 0.5*t*(1 - t))", sp.sqrt((1 - t) ** 2 + sp.Rational(1, 2) * t * (1 - t))),
    ("Abs(t - 0.5)", sp.Abs(t - sp.Rational(1, 2))),
    ("exp(-t) - exp(-1)*t", sp.exp(-t) - sp.exp(-1) * t),
    ("log(1 + t)/log(2)", sp.log(1 + t) / sp.log(2)),
    ("tan(t) + asin(t) + acos(t) + atan(t)", sp.tan(t) + sp.asin(t) + sp.acos(t) + sp.atan(t)),
    ("sinh(t)*cosh(t)/tanh(1 + t)", sp.sinh(t) * sp.cosh(t) / sp.tanh(1 + t)),
    ("E**t", sp.exp(t)),
    ("-t", -t),
    ("+t", t),
    ("--t", t),
    ("2**-3", sp.Rational(1, 8)),
    ("t**t", t**t),
    ("2**3**2", sp.Integer(512)),
    ("(((t)))", t),
    ("  t + 1  ", t + 1),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_parse_expression_matches_hand_built(text, expected):
    parsed = parse_expression(text)

    assert parsed == expected, f"{text!r} parsed to {parsed}, expected {expected}"
    assert sp.simplify(parsed - expected) == 0, f"{text!r} parsed to {parsed}, which differs from {expected}"


def test_parse_expression_uses_schedule_time_symbol():
    parsed = parse_expression("t")

    assert parsed is t, "the parsed t is not interp.schedules.t"
    assert parsed.is_real, "the parsed t is not real"


def test_parse_expression_parameters_are_real_symbols():
    parsed = parse_expression("a*t + (1 - t)**p", allowed_symbols=("t", "a", "p"))

    assert parsed == a * t + (1 - t) ** p, f"parsed to {parsed}"
    assert {symbol.name for symbol in parsed.free_symbols} == {"a", "p", "t"}, f"free symbols {parsed.free_symbols}"
    assert all(symbol.is_real for symbol in parsed.free_symbols), f"a symbol of {parsed} is not real"


def test_parse_expression_rejects_unlisted_parameter():
    with pytest.raises(ValueError, match=r"'p': the name is not an allowed symbol.*names E, a, pi, t"):
        parse_expression("(1 - t)**p", allowed_symbols=("t", "a"))


# Round trips through SymPy's printer, on random expression trees of the allowed grammar.

_LEAVES = st.sampled_from([t, 1 - t, sp.Integer(2), sp.Rational(1, 3), sp.pi, sp.E, sp.Integer(-5)])
_FUNCTIONS = [sp.sin, sp.cos, sp.tan, sp.exp, sp.log, sp.sqrt, sp.Abs, sp.atan, sp.sinh, sp.cosh, sp.tanh]


def _combine(children):
    unary = st.tuples(st.sampled_from(_FUNCTIONS), children).map(lambda pair: pair[0](pair[1]))
    binary = st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children).map(_apply_binary)
    power = st.tuples(children, st.integers(-3, 3)).map(lambda pair: pair[0] ** pair[1])
    return unary | binary | power


def _apply_binary(triple):
    operator, left, right = triple
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    return left / right


EXPRESSIONS = st.recursive(_LEAVES, _combine, max_leaves=8).filter(
    lambda expression: isinstance(expression, sp.Expr) and not expression.has(sp.zoo, sp.nan, sp.oo, -sp.oo)
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(EXPRESSIONS)
@example(sp.sin(sp.pi * t / 2) ** 2 / (1 - t))
def test_parse_expression_round_trips_sympy_printer(expression):
    text = sp.sstr(expression)
    if len(text) > MAX_LENGTH:
        return

    parsed = parse_expression(text)

    assert parsed == expression, f"{text!r} parsed to {parsed}, expected {expression}"


_ALPHABET = "t0123456789.+-*/() ^%@~<>=!,;:'\"[]{}_eapsinxlogqrtbcE\n\\"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=_ALPHABET, max_size=60))
@example("t.__class__")
@example("__import__('os')")
@example("9**9**9")
def test_parse_expression_only_raises_value_error(text):
    try:
        parsed = parse_expression(text)
    except ValueError:
        return

    assert isinstance(parsed, sp.Expr), f"{text!r} parsed to {parsed!r} of type {type(parsed).__name__}"
    assert parsed.free_symbols <= {t}, f"{text!r} parsed to {parsed} with symbols {parsed.free_symbols}"


# Schedules.


@pytest.mark.parametrize(
    ("beta_text", "sigma_text", "preset"),
    [
        ("t", "1 - t", schedules.linear),
        ("sin(pi*t/2)", "cos(pi*t/2)", schedules.trigonometric),
        ("t", "(1 - t)**2", lambda: schedules.power(2)),
        ("t", "(1 - t)**0.5", lambda: schedules.power(0.5)),
    ],
    ids=["linear", "trigonometric", "power(2)", "power(0.5)"],
)
def test_parse_schedule_matches_preset(beta_text, sigma_text, preset):
    parsed = parse_schedule(beta_text, sigma_text)
    expected = preset()

    assert isinstance(parsed, Schedule), f"parse_schedule returned {type(parsed).__name__}"
    assert sp.simplify(parsed.beta_expr - expected.beta_expr) == 0, f"beta {parsed.beta_expr} != {expected.beta_expr}"
    assert sp.simplify(parsed.sigma_expr - expected.sigma_expr) == 0, f"sigma {parsed.sigma_expr} != {expected.sigma_expr}"
    assert parsed.name == f"beta={beta_text}, sigma={sigma_text}", f"name {parsed.name!r}"


def test_parse_schedule_substitutes_parameters():
    parsed = parse_schedule("t", "sqrt((1 - t)**2 + a*t*(1 - t))", parameters={"a": 0.5}, name="latent")
    expected = schedules.latent_noise(0.5)
    power = parse_schedule("t", "(1 - t)**p", parameters={"p": 3})

    assert power.sigma_expr == (1 - t) ** 3, f"sigma {power.sigma_expr}"

    assert parsed.name == "latent", f"name {parsed.name!r}"
    assert sp.simplify(parsed.sigma_expr**2 - expected.sigma_expr**2) == 0, f"sigma {parsed.sigma_expr}"
    assert parsed.sigma_expr.free_symbols == {t}, f"sigma has symbols {parsed.sigma_expr.free_symbols}"


@pytest.mark.parametrize(
    ("beta_text", "sigma_text", "parameters", "error", "pattern"),
    [
        ("t**2 + 1", "1 - t", None, ValueError, r"beta\(0\) must be 0, got beta = t\*\*2 \+ 1"),
        ("t/2", "1 - t", None, ValueError, r"beta\(1\) must be 1"),
        ("t", "2 - t", None, ValueError, r"sigma\(1\) must be 0"),
        ("t", "(1 - t)*(t - 0.5)", None, ValueError, r"sigma must be real and positive on \[0, 1\)"),
        ("t", "(1 - t)**p", None, ValueError, r"'p': the name is not an allowed symbol"),
        ("t", "(1 - t)**p", {"p": "2"}, TypeError, r"parameter p must be a real number, got str"),
        ("t", "(1 - t)**p", {"p": float("nan")}, ValueError, r"parameter p must be finite and at most 1e\+300 in magnitude, got nan"),
        ("t", "(1 - t)*p**p + 1 - t", {"p": 10**300}, ValueError, r"'p\*\*p': a numeric exponent must lie in \[-100, 100\]"),
        ("t", "(1 - t)**p", {"p": 10**400}, ValueError, r"parameter p must be finite and at most 1e\+300 in magnitude"),
        ("t", "(1 - t)**p", {"t": 2}, ValueError, r"parameters must not contain 't'"),
        ("t", "(1 - t)**p", [("p", 2)], TypeError, r"parameters must be a mapping"),
        ("t", "t.__class__", None, ValueError, r"Attribute is not allowed"),
    ],
    ids=[
        "beta-at-0",
        "beta-at-1",
        "sigma-at-1",
        "sigma-negative",
        "unknown-parameter",
        "string-value",
        "nan-value",
        "huge-power-of-parameter",
        "huge-value",
        "time-parameter",
        "list",
        "hostile",
    ],
)
def test_parse_schedule_rejects_invalid(beta_text, sigma_text, parameters, error, pattern):
    with pytest.raises(error, match=pattern):
        parse_schedule(beta_text, sigma_text, parameters=parameters)


def test_schedule_string_error_points_at_parser():
    with pytest.raises(TypeError, match=r"got the string 'sin\(t\)'\. Parse it with interp\.parsing\.parse_expression\('sin\(t\)'\)"):
        Schedule("sin(t)", 1 - t)


def test_parsing_exported_from_package():
    assert "parsing" in interp.__all__, "interp.__all__ does not list parsing"
    assert interp.parsing.parse_expression is parse_expression, "interp.parsing is not the parsing module"
