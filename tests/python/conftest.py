"""Shared helpers for kiln's Python tests: export a module, run it with kiln, compare with eager."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch.utils import _pytree

import kiln

# DESIGN.md: fp32 engines match eager per op within rtol = atol = 1e-4.
FP32_RTOL = 1e-4
FP32_ATOL = 1e-4


def export(module: torch.nn.Module, args: tuple, kwargs: dict | None = None, dynamic_shapes=None,
           decompose: bool = True) -> torch.export.ExportedProgram:
    module = module.eval()
    ep = torch.export.export(module, args, kwargs or {}, dynamic_shapes=dynamic_shapes)
    return ep.run_decompositions() if decompose else ep


def flat_tensors(value) -> list:
    return [x for x in _pytree.tree_leaves(value)]


def assert_outputs_match(actual, expected, rtol=FP32_RTOL, atol=FP32_ATOL, what="output"):
    actual, expected = flat_tensors(actual), flat_tensors(expected)
    assert len(actual) == len(expected), f"{what}: kiln gave {len(actual)} outputs, eager {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, torch.Tensor):
            assert isinstance(a, torch.Tensor), f"{what} {i}: expected a tensor, found {type(a)}"
            assert a.dtype == e.dtype, f"{what} {i}: dtype {a.dtype} != eager {e.dtype}"
            assert a.shape == e.shape, f"{what} {i}: shape {tuple(a.shape)} != eager {tuple(e.shape)}"
            torch.testing.assert_close(a, e, rtol=rtol, atol=atol, equal_nan=True,
                                       msg=lambda m: f"{what} {i}: {m}")
        else:
            assert a == e, f"{what} {i}: {a!r} != eager {e!r}"


def check_module(module: torch.nn.Module, *args, rtol=FP32_RTOL, atol=FP32_ATOL, dynamic_shapes=None,
                 extra_inputs: list[tuple] | None = None, **kwargs) -> kiln.Program:
    """Exports `module`, runs it with kiln on `args` (and on each of `extra_inputs`), compares with eager."""
    ep = export(module, args, kwargs, dynamic_shapes=dynamic_shapes)
    program = kiln.Program.from_exported_program(ep)
    for inputs in [args] + list(extra_inputs or []):
        with torch.no_grad():
            expected = module(*inputs, **kwargs)
        actual = program(*inputs, **kwargs)
        assert_outputs_match(actual, expected, rtol=rtol, atol=atol)
    return program


def kiln_cli() -> str:
    """The `kiln` executable: installed with the package, or from a CMake build tree."""
    found = shutil.which("kiln")
    if found:
        return found
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for candidate in ("build/dev/tools/kiln/kiln", "build/release/tools/kiln/kiln"):
        path = os.path.join(root, candidate)
        if os.path.exists(path):
            return path
    pytest.fail("the kiln CLI is not installed (pip install -e .) and no CMake build has it")


def run_cli(*args, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([kiln_cli(), *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"kiln {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
