"""kiln's enums: element types, engine capability and device types.

They mirror ``torch_tensorrt``'s (``dtype.f16``, ``EngineCapability.STANDARD``, ``DeviceType.GPU``)
so that settings written for it read the same. Each has ``_from(x)``, which takes the spellings a
user is likely to write and says what it accepts when given something else. torch is imported
only when a torch object is in play, so kiln can be imported without it.
"""
from __future__ import annotations

import enum
import sys
from typing import Any


def _torch():
    """The torch module if the caller can have handed us torch objects, else None."""
    return sys.modules.get("torch")


class dtype(enum.Enum):  # noqa: N801 - named like torch.dtype and torch_tensorrt.dtype
    """An element type. The value is PyTorch's name for it ("float32")."""

    f32 = "float32"
    f16 = "float16"
    bf16 = "bfloat16"
    f64 = "float64"
    i64 = "int64"
    i32 = "int32"
    i16 = "int16"
    i8 = "int8"
    u8 = "uint8"
    b = "bool"
    c64 = "complex64"  # read and produced by the spectral ops (torch.fft) alone

    # Long-form aliases, as torch spells them.
    float32 = "float32"
    float16 = "float16"
    half = "float16"
    bfloat16 = "bfloat16"
    float64 = "float64"
    double = "float64"
    int64 = "int64"
    long = "int64"
    int32 = "int32"
    int16 = "int16"
    int8 = "int8"
    uint8 = "uint8"
    complex64 = "complex64"

    @classmethod
    def _from(cls, value: Any) -> "dtype":
        """A kiln dtype from a kiln dtype, a torch.dtype, a NumPy dtype or type, or a name
        ("fp16", "half", "float16", "torch.float16", "f16", ...)."""
        if isinstance(value, cls):
            return value
        torch = _torch()
        if torch is not None and isinstance(value, torch.dtype):
            name = str(value).removeprefix("torch.")
            found = _NAMES.get(name)
            if found is None:
                raise ValueError(f"kiln has no element type for {value}; it supports "
                                 f"{_supported_list()}")
            return found
        if isinstance(value, str):
            key = value.strip().lower().removeprefix("torch.")
            found = _NAMES.get(key)
            if found is None:
                raise ValueError(f"unknown dtype name {value!r}; expected one of "
                                 f"{', '.join(sorted(_NAMES))}")
            return found
        numpy_name = _numpy_name(value)
        if numpy_name is not None:
            found = _NAMES.get(numpy_name)
            if found is None:
                raise ValueError(f"kiln has no element type for NumPy's {numpy_name}; it supports "
                                 f"{_supported_list()}")
            return found
        raise TypeError(f"cannot make a kiln dtype from {value!r} (of type "
                        f"{type(value).__name__}); "
                        "expected a kiln.dtype, a torch.dtype, a NumPy dtype or a name like 'fp16'")

    def to(self, kind: Any) -> Any:
        """This type as ``torch.dtype`` (pass the class ``torch.dtype``), a NumPy dtype (pass
        ``numpy.dtype``) or its name (pass ``str``)."""
        if kind is str:
            return self.value
        torch = _torch()
        if torch is not None and kind is torch.dtype:
            return getattr(torch, self.value)
        import numpy

        if kind is numpy.dtype:
            if self is dtype.bf16:
                raise TypeError("NumPy has no bfloat16 type")
            return numpy.dtype(self.value)
        raise TypeError(f"dtype.to: expected torch.dtype, numpy.dtype or str, found {kind!r}")

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self.value]

    def __str__(self) -> str:
        return self.value


_NAMES: dict[str, dtype] = {
    "f32": dtype.f32, "fp32": dtype.f32, "float32": dtype.f32, "float": dtype.f32,
    "single": dtype.f32,
    "f16": dtype.f16, "fp16": dtype.f16, "float16": dtype.f16, "half": dtype.f16,
    "bf16": dtype.bf16, "bfloat16": dtype.bf16,
    "f64": dtype.f64, "fp64": dtype.f64, "float64": dtype.f64, "double": dtype.f64,
    "i64": dtype.i64, "int64": dtype.i64, "long": dtype.i64,
    "i32": dtype.i32, "int32": dtype.i32, "int": dtype.i32,
    "i16": dtype.i16, "int16": dtype.i16, "short": dtype.i16,
    "i8": dtype.i8, "int8": dtype.i8,
    "u8": dtype.u8, "uint8": dtype.u8,
    "b": dtype.b, "bool": dtype.b,
    "c64": dtype.c64, "complex64": dtype.c64, "cfloat": dtype.c64,
}

_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4,
             "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
             "complex64": 8}


def _supported_list() -> str:
    return ", ".join(d.value for d in dtype)


def _numpy_name(value: Any) -> str | None:
    """NumPy's name for a NumPy dtype or scalar type; None for anything else."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    if isinstance(value, numpy.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, numpy.generic):
        return numpy.dtype(value).name
    return None


class EngineCapability(enum.Enum):
    """Which kernels an engine may use. kiln builds STANDARD engines only; the others exist so
    that settings written for TensorRT are understood (and rejected with a reason)."""

    STANDARD = 0
    SAFETY = 1
    DLA_STANDALONE = 2

    @classmethod
    def _from(cls, value: Any) -> "EngineCapability":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper()
            if key == "DEFAULT":
                return cls.STANDARD
            if key in cls.__members__:
                return cls[key]
            raise ValueError(f"unknown engine capability {value!r}; expected one of "
                             f"{', '.join(m.lower() for m in cls.__members__)}")
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                raise ValueError(f"unknown engine capability {value}; expected 0 (STANDARD), "
                                 "1 (SAFETY) or 2 (DLA_STANDALONE)") from None
        # TensorRT's own enum (trt.EngineCapability) spells its members the same way.
        name = getattr(value, "name", None)
        if isinstance(name, str) and name.upper() in cls.__members__:
            return cls[name.upper()]
        raise TypeError(f"cannot make an EngineCapability from {value!r} (of type "
                        f"{type(value).__name__}); expected kiln.EngineCapability or a name "
                        "like 'standard'")


class DeviceType(enum.Enum):
    """Where an engine runs. ``GPU`` and ``CUDA`` are the same member."""

    GPU = "cuda"
    CUDA = "cuda"
    CPU = "cpu"
    DLA = "dla"

    @classmethod
    def _from(cls, value: Any) -> "DeviceType":
        if isinstance(value, cls):
            return value
        torch = _torch()
        if torch is not None and isinstance(value, torch.device):
            value = value.type
        if isinstance(value, str):
            key = value.strip().lower()
            if key in ("cuda", "gpu"):
                return cls.GPU
            if key == "cpu":
                return cls.CPU
            if key == "dla":
                return cls.DLA
            raise ValueError(f"unknown device type {value!r}; expected 'cuda' (or 'gpu') or 'cpu'")
        raise TypeError(f"cannot make a DeviceType from {value!r} (of type "
                        f"{type(value).__name__}); "
                        "expected kiln.DeviceType or a name like 'cuda'")
