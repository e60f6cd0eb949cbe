"""GPU tests: kiln's CUDA backend against PyTorch eager on the same GPU.

    python -m pytest tests/gpu -x -q          # on the GPU machine

Every test here carries the ``gpu`` marker and is skipped, with the reason, where
``torch.cuda.is_available()`` is False. The ``cuda`` fixture holds what the test files share
(they cannot import this file: tests/python has a conftest module of the same name). kiln is
imported where it is used, so that collection needs only torch.
"""
from __future__ import annotations

import contextlib
import pathlib
import sys

import pytest
import torch

_HERE = pathlib.Path(__file__).resolve().parent
_NO_GPU = ("needs a CUDA GPU: torch.cuda.is_available() is False here (these tests run on the "
           "GPU machine: python -m pytest tests/gpu)")


_THIS_MODULE = sys.modules[__name__]


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (kiln's CUDA backend)")
    _leave_the_conftest_name_to_tests_python(config)


def _leave_the_conftest_name_to_tests_python(config) -> None:
    """conftest.py files outside packages all import as the module ``conftest``, the last loaded
    taking the name, and tests/python's test modules take their helpers with ``from conftest
    import ...``. Where pytest loads this file after tests/python's (``pytest tests/python
    tests/gpu``), give the name back to that one; this file's own tests use fixtures only."""
    if sys.modules.get("conftest") is not _THIS_MODULE:
        return
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if (plugin is not _THIS_MODULE and getattr(plugin, "__name__", None) == "conftest"
                and path and pathlib.Path(path).resolve().parent == _HERE.parent / "python"):
            sys.modules["conftest"] = plugin
            return


def pytest_collection_modifyitems(config, items):
    # A hook of a conftest sees every collected item: touch only this directory's.
    available = torch.cuda.is_available()
    for item in items:
        if _HERE not in pathlib.Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.gpu)
        if not available:
            item.add_marker(pytest.mark.skip(reason=_NO_GPU))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@contextlib.contextmanager
def tf32(enabled: bool):
    """PyTorch's TF32 switches for matmuls and cuDNN convolutions (cuDNN's is on by default)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class CudaHarness:
    """Export, kiln.compile on the current GPU, eager references and comparisons."""

    tf32 = staticmethod(tf32)

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device())

    def to_device(self, value, dtype: torch.dtype | None = None):
        """A tensor (or a tuple of them) on the GPU; floating tensors cast to ``dtype``."""
        if isinstance(value, (tuple, list)):
            return type(value)(self.to_device(v, dtype) for v in value)
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        return value.to(self.device)

    def compile(self, module: torch.nn.Module, args: tuple, **settings) -> torch.fx.GraphModule:
        """torch.export (non-strict) of ``module`` on ``args``, then kiln.compile for this GPU."""
        import kiln

        module = module.eval()
        ep = torch.export.export(module, tuple(args), strict=False)
        settings.setdefault("device", self.device)
        return kiln.compile(ep, inputs=list(args), **settings)

    def eager(self, module: torch.nn.Module, args: tuple, *, allow_tf32: bool = False):
        with torch.no_grad(), tf32(allow_tf32):
            return module(*args)

    @staticmethod
    def segments(module: torch.nn.Module) -> dict:
        """The compiled module's engines and the parts that run in PyTorch, with their ops. An
        ``_run_on_acc_N`` that is still an FX module failed to build and runs in PyTorch."""
        import kiln

        engines, torch_segments, torch_ops = [], [], []
        for name, child in module.named_children():
            if isinstance(child, kiln.KilnEngineModule):
                engines.append((name, child))
            elif name.startswith(("_run_on_gpu_", "_run_on_acc_")):
                torch_segments.append(name)
                torch_ops += [str(n.target) for n in child.graph.nodes
                              if n.op == "call_function" and "getitem" not in str(n.target)]
        return {"engines": engines, "torch_segments": torch_segments, "torch_ops": torch_ops}

    def assert_runs_engines_on_gpu(self, module: torch.nn.Module, what: str) -> dict:
        parts = self.segments(module)
        print(f"{what}: {len(parts['engines'])} engine(s), {len(parts['torch_segments'])} "
              f"PyTorch segment(s) {parts['torch_segments']}, ops left to PyTorch: "
              f"{sorted(set(parts['torch_ops']))}")
        assert parts["engines"], (
            f"{what}: kiln built no engine (PyTorch segments {parts['torch_segments']}, ops "
            f"{sorted(set(parts['torch_ops']))})")
        for name, engine in parts["engines"]:
            backend = engine.runtime.info["backend"]
            assert backend != "cpu", f"{what}: engine {name} runs on kiln's {backend} backend"
        return parts

    @staticmethod
    def first_tensor(output) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return output
        leaves = [t for t in torch.utils._pytree.tree_leaves(output)
                  if isinstance(t, torch.Tensor)]
        assert leaves, f"the output holds no tensor ({type(output).__name__})"
        return leaves[0]

    @staticmethod
    def cosine(actual: torch.Tensor, expected: torch.Tensor) -> float:
        return torch.nn.functional.cosine_similarity(
            actual.detach().double().flatten(), expected.detach().double().flatten(),
            dim=0).item()

    @staticmethod
    def max_abs(actual: torch.Tensor, expected: torch.Tensor) -> float:
        return (actual.detach().double() - expected.detach().double()).abs().max().item()


@pytest.fixture
def cuda() -> CudaHarness:
    return CudaHarness()
