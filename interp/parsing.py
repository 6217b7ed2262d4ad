"""Safe parsing of schedule formulas that a reader types, such as ``sin(pi*t/2)`` or ``(1 - t)**p``.

The text never reaches ``eval``, ``exec`` or ``sympy.sympify``. It is parsed with Python's
``ast`` module in ``eval`` mode, and the SymPy expression is built node by node from a
whitelist:

* numbers: integer and decimal literals, with decimals turned into exact rationals through
  their shortest repr (``0.1`` becomes ``1/10``), so that the boundary checks of
  :class:`~interp.schedules.Schedule` stay exact;
* names: the time symbol ``t`` (always :data:`interp.schedules.t`), the parameter names the
  caller allows, and the constants ``pi`` and ``E``;
* operators: ``+``, ``-``, ``*``, ``/``, ``**``, unary ``+`` and ``-``, and parentheses;
* calls with one positional argument to ``sin``, ``cos``, ``tan``, ``asin``, ``acos``, ``atan``,
  ``sinh``, ``cosh``, ``tanh``, ``exp``, ``log``, ``sqrt`` and ``Abs``.

Every other node (attribute access, subscripts, lambdas, comprehensions, strings, keyword
arguments, comparisons, ``^`` and so on) raises ``ValueError``. The text is limited to
:data:`MAX_LENGTH` characters, a numeric exponent to ``|exponent| <= MAX_EXPONENT``, and every
number and intermediate result to :data:`MAX_MAGNITUDE`. SymPy evaluates arithmetic on numbers
exactly, so without those bounds ``9**9**9`` or ``exp(exp(exp(100)))**2`` would never finish.
"""

from __future__ import annotations

import ast
import cmath
import keyword
import math
from collections.abc import Iterable, Mapping
from numbers import Real

import sympy as sp

from .schedules import Schedule, t

__all__ = ["MAX_LENGTH", "MAX_EXPONENT", "MAX_MAGNITUDE", "FUNCTIONS", "CONSTANTS", "parse_expression", "parse_schedule"]

#: Maximum length of a formula, in characters.
MAX_LENGTH = 500

#: Maximum absolute value of a numeric exponent.
MAX_EXPONENT = 100

#: Maximum magnitude of a number in a formula, including each intermediate result such as
#: ``10**64`` in ``(10**64)**2``. A nonzero product, quotient or power must also be at least
#: ``1 / MAX_MAGNITUDE`` in magnitude.
MAX_MAGNITUDE = 1e300

#: Functions a formula may call, each with one argument.
FUNCTIONS: dict[str, type[sp.Function]] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "Abs": sp.Abs,
}

#: Named constants a formula may use.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

# Each operator works on SymPy expressions and on Python complex numbers alike.
_BINARY_OPERATORS = {
    ast.Add: lambda left, right: left + right,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: lambda left, right: left * right,
    ast.Div: lambda left, right: left / right,
    ast.Pow: lambda left, right: left**right,
}

# Double-precision twins of FUNCTIONS, used to bound the size of numbers before SymPy builds them.
_COMPLEX_FUNCTIONS = {
    "sin": cmath.sin,
    "cos": cmath.cos,
    "tan": cmath.tan,
    "asin": cmath.asin,
    "acos": cmath.acos,
    "atan": cmath.atan,
    "sinh": cmath.sinh,
    "cosh": cmath.cosh,
    "tanh": cmath.tanh,
    "exp": cmath.exp,
    "log": cmath.log,
    "sqrt": cmath.sqrt,
    "Abs": lambda value: complex(abs(value)),
}

_OPERATOR_HINTS = {
    ast.BitXor: "use ** for powers, not ^",
    ast.FloorDiv: "use / for division",
    ast.Mod: "the remainder operator % is not supported",
    ast.MatMult: "matrix products are not supported",
}


def parse_expression(text: str, allowed_symbols: Iterable[str] = ("t",)) -> sp.Expr:
    """Parse a formula into a SymPy expression, accepting only the whitelisted syntax of this module.

    ``allowed_symbols`` lists the names that become real SymPy symbols. ``t`` is mapped to
    :data:`interp.schedules.t`, and each other name to ``sympy.Symbol(name, real=True)``.
    Raises ``TypeError`` when ``text`` is not a string and ``ValueError`` for every rejected
    formula, with the offending part of the text and what is allowed instead.
    """
    return _parse(text, _symbol_table(allowed_symbols), CONSTANTS)


def parse_schedule(
    beta_text: str,
    sigma_text: str,
    parameters: Mapping[str, float] | None = None,
    name: str | None = None,
) -> Schedule:
    """Parse the formulas of ``beta`` and ``sigma`` in ``t`` and build the :class:`~interp.schedules.Schedule`.

    ``parameters`` maps extra names in the formulas to finite real values, for example
    ``{"p": 1.5}`` for ``sigma_text = "(1 - t)**p"``. Each value enters the formula as an exact
    rational, under the same size limits as a number typed in the text. The schedule's boundary
    conditions are checked by :class:`~interp.schedules.Schedule`, which raises ``ValueError`` when they fail.
    """
    constants = {**CONSTANTS, **_parameter_values(parameters)}
    symbols = {"t": t}
    beta = _parse(beta_text, symbols, constants)
    sigma = _parse(sigma_text, symbols, constants)
    return Schedule(beta, sigma, name=name if name is not None else f"beta={beta_text}, sigma={sigma_text}")


def _parse(text: str, symbols: Mapping[str, sp.Symbol], constants: Mapping[str, sp.Expr]) -> sp.Expr:
    if not isinstance(text, str):
        raise TypeError(f"text must be a string such as 'sin(pi*t/2)', got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"text must have at most {MAX_LENGTH} characters, got {len(text)}. Shorten the formula")
    if not text.strip():
        raise ValueError("text must contain a formula such as 'sin(pi*t/2)', got an empty string")

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"text is not a valid formula: {error.msg} in {text!r}") from error
    except (MemoryError, RecursionError) as error:
        raise ValueError(f"text is nested too deeply to parse: {text[:60]!r}... Remove redundant parentheses or signs") from error

    builder = _Builder(text, symbols, constants)
    try:
        expression = builder.build(tree.body)
    except RecursionError as error:
        raise ValueError(f"text is nested too deeply: {text[:60]!r}... Remove redundant parentheses or signs") from error

    if expression.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ValueError(f"text {text!r} is undefined or infinite, because it simplifies to {expression}. Check it for a division by zero or a logarithm of 0")
    return expression


def _symbol_table(allowed_symbols: Iterable[str]) -> dict[str, sp.Symbol]:
    if isinstance(allowed_symbols, str):
        raise TypeError(f"allowed_symbols must be a sequence of names such as ('t', 'p'), got the string {allowed_symbols!r}")
    table: dict[str, sp.Symbol] = {}
    for name in allowed_symbols:
        _check_symbol_name(name)
        table[name] = t if name == "t" else sp.Symbol(name, real=True)
    return table


def _check_symbol_name(name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a symbol name must be a string, got {type(name).__name__}: {name!r}")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"symbol name {name!r} is not a Python identifier. Use a name such as 'a' or 'p'")
    if name.startswith("_"):
        raise ValueError(f"symbol name {name!r} must not start with an underscore. Use a name such as 'a' or 'p'")
    if name in FUNCTIONS or name in CONSTANTS:
        raise ValueError(f"symbol name {name!r} is already a function or constant of the formula language. Pick another name")


def _parameter_values(parameters) -> dict[str, sp.Expr]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping from names to numbers such as {{'p': 1.5}}, got {type(parameters).__name__}")
    values = {}
    for key, value in parameters.items():
        _check_symbol_name(key)
        if key == "t":
            raise ValueError("parameters must not contain 't', the time symbol. Rename the parameter")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"parameter {key} must be a real number, got {type(value).__name__}: {value!r}")
        try:
            magnitude = abs(float(value))
        except OverflowError:
            magnitude = math.inf
        if not math.isfinite(magnitude) or magnitude > MAX_MAGNITUDE:
            raise ValueError(f"parameter {key} must be finite and at most {MAX_MAGNITUDE:g} in magnitude, got {value}")
        values[key] = sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(float(value)))
    return values


class _Builder:
    """Build a SymPy expression from an ``ast`` node, raising ``ValueError`` on any node outside the whitelist.

    Each build step returns the expression together with its value in double precision when the
    expression is a number, and None otherwise or where that value is undefined, such as ``1/0``.
    Checking those values before SymPy builds the node keeps every number within :data:`MAX_MAGNITUDE`.
    Without that check, SymPy would try to evaluate numbers like ``exp(exp(exp(100)))`` exactly and
    hang.
    """

    def __init__(self, text: str, symbols: Mapping[str, sp.Symbol], constants: Mapping[str, sp.Expr]):
        self.text = text
        self.symbols = symbols
        self.constants = constants

    def build(self, node: ast.AST) -> sp.Expr:
        expression, _ = self._build(node)
        return expression

    def _build(self, node: ast.AST) -> tuple[sp.Expr, complex | None]:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self._reject(node, f"{type(node).__name__} is not allowed")

    def _reject(self, node: ast.AST, reason: str) -> ValueError:
        segment = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        return ValueError(
            f"text contains {segment!r}: {reason}. A formula may use numbers, the names "
            f"{', '.join(sorted({*self.symbols, *self.constants}))}, + - * / ** and parentheses, "
            f"and the functions {', '.join(FUNCTIONS)}"
        )

    def _checked(self, node: ast.AST, expression_builder, value_builder, may_underflow: bool = False):
        """Compute the double-precision value, reject it when it is out of range, then build the expression.

        ``may_underflow`` marks a result that is nonzero in exact arithmetic, so a value of 0 means
        that it underflowed.
        """
        try:
            value = value_builder()
        except (ZeroDivisionError, ValueError):
            value = None
        except OverflowError:
            raise self._reject(node, self._range_reason()) from None
        if value is not None:
            too_large = not cmath.isfinite(value) or abs(value) > MAX_MAGNITUDE
            too_small = may_underflow and abs(value) < 1 / MAX_MAGNITUDE
            if too_large or too_small:
                raise self._reject(node, self._range_reason())
        return expression_builder(), value

    @staticmethod
    def _range_reason() -> str:
        return f"every number and intermediate result must lie between {1 / MAX_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in magnitude, or be 0"

    def _constant(self, node: ast.Constant) -> tuple[sp.Expr, complex | None]:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._reject(node, "only integer and decimal numbers are allowed as constants")
        if isinstance(value, int):
            return self._checked(node, lambda: sp.Integer(value), lambda: complex(value))
        # repr gives the shortest decimal that rounds to the same float, which is the typed decimal.
        return self._checked(node, lambda: sp.Rational(repr(value)), lambda: complex(value))

    def _name(self, node: ast.Name) -> tuple[sp.Expr, complex | None]:
        if node.id in self.symbols:
            return self.symbols[node.id], None
        if node.id in self.constants:
            constant = self.constants[node.id]
            return constant, complex(float(constant))
        if node.id in FUNCTIONS:
            raise self._reject(node, f"the function {node.id} must be called with one argument, as in {node.id}(t)")
        raise self._reject(node, "the name is not an allowed symbol, constant or function")

    def _unary(self, node: ast.UnaryOp) -> tuple[sp.Expr, complex | None]:
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self._reject(node, f"the operator {type(node.op).__name__} is not allowed")
        operand, value = self._build(node.operand)
        sign = -1 if isinstance(node.op, ast.USub) else 1
        return sign * operand, None if value is None else sign * value

    def _binary(self, node: ast.BinOp) -> tuple[sp.Expr, complex | None]:
        operator = type(node.op)
        if operator in _OPERATOR_HINTS:
            raise self._reject(node, _OPERATOR_HINTS[operator])
        if operator not in _BINARY_OPERATORS:
            raise self._reject(node, f"the operator {operator.__name__} is not allowed")

        left, left_value = self._build(node.left)
        right, right_value = self._build(node.right)
        if operator is ast.Pow:
            self._check_exponent(node, right, right_value)
        combine = _BINARY_OPERATORS[operator]
        if left_value is None or right_value is None:
            return combine(left, right), None
        # A product, quotient or power of nonzero numbers is nonzero, so 0 there means underflow.
        may_underflow = operator in (ast.Mult, ast.Div, ast.Pow) and left_value != 0 and right_value != 0
        return self._checked(node, lambda: combine(left, right), lambda: combine(left_value, right_value), may_underflow)

    def _check_exponent(self, node: ast.BinOp, exponent: sp.Expr, value: complex | None) -> None:
        if not exponent.is_number:
            return
        if value is None:
            raise self._reject(node, "the exponent is undefined")
        if abs(value) > MAX_EXPONENT:
            raise self._reject(node, f"a numeric exponent must lie in [-{MAX_EXPONENT}, {MAX_EXPONENT}]")

    def _call(self, node: ast.Call) -> tuple[sp.Expr, complex | None]:
        if not isinstance(node.func, ast.Name):
            raise self._reject(node, "only the listed functions may be called, by name")
        name = node.func.id
        if name not in FUNCTIONS:
            raise self._reject(node, f"{name} is not an allowed function")
        if node.keywords:
            raise self._reject(node, "keyword arguments are not allowed")
        if len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self._reject(node, f"{name} takes exactly one positional argument")

        argument, value = self._build(node.args[0])
        function = FUNCTIONS[name]
        if value is None:
            return function(argument), None
        return self._checked(node, lambda: function(argument), lambda: _COMPLEX_FUNCTIONS[name](value))
