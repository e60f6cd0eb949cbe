"""Running torch.export programs with kiln's reference CPU backend."""
from __future__ import annotations

import io
import os
from typing import Any

from kiln import _C


def _load_spec(text: str):
    if not text:
        return None
    from torch.utils import _pytree

    try:
        return _pytree.treespec_loads(text)
    except Exception:  # an unknown container type: fall back to flat inputs and outputs
        return None


class Program:
    """A torch.export program read by kiln's C++ core.

    Call it like the exported module: ``program(*args, **kwargs)`` takes the same (nested) arguments
    and returns the same structure, with tensors computed by kiln. Loading checks the program
    (structure, shapes); calling checks the inputs (count, dtype, shape, dynamic ranges) and raises
    a :class:`kiln.errors.KilnError` subclass naming what was expected and what was found.
    """

    def __init__(self, handle: _C.Program):
        self._handle = handle
        self._in_spec = _load_spec(handle.in_spec)
        self._out_spec = _load_spec(handle.out_spec)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Program":
        """Reads an archive written by ``torch.export.save`` (PyTorch >= 2.9)."""
        return cls(_C.load_program_file(os.fspath(path)))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Program":
        return cls(_C.load_program_bytes(bytes(data)))

    @classmethod
    def from_exported_program(cls, exported_program) -> "Program":
        """Serializes an ``ExportedProgram`` in memory and reads it."""
        import torch

        buffer = io.BytesIO()
        torch.export.save(exported_program, buffer)
        return cls.from_bytes(buffer.getvalue())

    def run(self, inputs: list) -> list:
        """Runs on flat inputs (tensors in the program's input order); returns flat outputs."""
        arrays = []
        for i, t in enumerate(inputs):
            if hasattr(t, "device") and t.device.type != "cpu":
                from kiln.errors import InvalidArgumentError

                raise InvalidArgumentError(
                    f"input {i}: expected a tensor on the cpu, found one on {t.device}")
            if hasattr(t, "detach"):
                t = t.detach()
            arrays.append(t)
        return list(self._handle.run(arrays))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from torch.utils import _pytree

        flat, _ = _pytree.tree_flatten((args, kwargs))
        outputs = self.run([x for x in flat if x is not None])
        if self._out_spec is not None:
            return _pytree.tree_unflatten(outputs, self._out_spec)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @property
    def ir(self) -> str:
        """The program in kiln's IR text form."""
        return self._handle.ir

    @property
    def unsupported_ops(self) -> list[str]:
        """Ops the reference backend cannot run, with their counts and nodes."""
        return list(self._handle.unsupported_ops)

    @property
    def input_names(self) -> list[str]:
        return list(self._handle.input_names)

    @property
    def output_names(self) -> list[str]:
        return list(self._handle.output_names)

    def __repr__(self) -> str:
        return (f"kiln.Program({self._handle.num_nodes} nodes, inputs={self.input_names}, "
                f"outputs={self.output_names})")


def load_program(path: str | os.PathLike) -> Program:
    """Reads a ``torch.export.save`` archive; same as :meth:`Program.load`."""
    return Program.load(path)
