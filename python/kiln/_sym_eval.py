"""Evaluating kiln's symbolic dim expressions (sympy's str form, as the engine records them) over
ints or torch SymInts, without sympy: the fake implementation of ``kiln::execute_engine`` uses it to
give output shapes while torch.export traces a compiled module."""
from __future__ import annotations

import ast
import operator
from typing import Any, Mapping

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def _max(*xs):
    import torch

    result = xs[0]
    for x in xs[1:]:
        result = torch.sym_max(result, x)
    return result


def _min(*xs):
    import torch

    result = xs[0]
    for x in xs[1:]:
        result = torch.sym_min(result, x)
    return result


_FUNCTIONS = {
    "Max": _max,
    "Min": _min,
    "FloorDiv": operator.floordiv,
    "CleanDiv": operator.floordiv,
    "Mod": operator.mod,
    "PythonMod": operator.mod,
    "PowByNatural": operator.pow,
}


def evaluate(text: str, bindings: Mapping[str, Any]):
    """Evaluates ``text`` ("2*s0", "s0 + 1", "Max(1, s0)", "(s0//2)") with ``bindings`` for its
    symbols. Raises ValueError naming anything it does not understand."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"cannot parse the symbolic size '{text}': {e}") from None
    return _eval(tree.body, text, bindings)


def _eval(node, text, bindings):
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in bindings:
            raise ValueError(f"symbolic size '{text}' uses {node.id}, which no input determines")
        return bindings[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, text, bindings)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, text, bindings),
                                      _eval(node.right, text, bindings))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS and not node.keywords):
        return _FUNCTIONS[node.func.id](*[_eval(a, text, bindings) for a in node.args])
    raise ValueError(f"symbolic size '{text}': kiln cannot evaluate {ast.dump(node)} here")
