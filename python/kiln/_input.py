"""kiln.Input: the shape range, dtype and layout of one program input, as torch_tensorrt.Input.

``Input(shape)`` is static; ``Input(min_shape=, opt_shape=, max_shape=)`` is a range the engine
must accept, tuned for ``opt_shape`` (one optimization profile). ``to_spec()`` is the plain form
the C++ core reads.
"""
from __future__ import annotations

import enum
import operator
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from kiln._enums import dtype as kiln_dtype

_PROFILE_FIELDS = ("min_shape", "opt_shape", "max_shape")

# torch.memory_format spellings -> kiln's layout names, with the rank each layout needs.
_FORMAT_NAMES = {
    "contiguous": "contiguous", "contiguous_format": "contiguous", "linear": "contiguous",
    "nchw": "contiguous",
    "channels_last": "channels_last", "nhwc": "channels_last",
    "channels_last_3d": "channels_last_3d", "ndhwc": "channels_last_3d",
}
_FORMAT_RANK = {"channels_last": 4, "channels_last_3d": 5}


def _torch():
    return sys.modules.get("torch")


def _format_name(value: Any) -> str:
    torch = _torch()
    if value is None:
        return "contiguous"
    if torch is not None and isinstance(value, torch.memory_format):
        key = str(value).removeprefix("torch.")
    elif isinstance(value, str):
        key = value.strip().lower().removeprefix("torch.")
    else:
        raise TypeError("Input: format must be torch.contiguous_format, torch.channels_last or "
                        f"torch.channels_last_3d, found {type(value).__name__} {value!r}")
    name = _FORMAT_NAMES.get(key)
    if name is None:
        raise ValueError(f"Input: unsupported format {value!r}; kiln takes "
                         "torch.contiguous_format, torch.channels_last (4-D) and "
                         "torch.channels_last_3d (5-D)")
    return name


def _as_shape(what: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        torch = _torch()
        if not (torch is not None and isinstance(value, torch.Size)):
            raise TypeError(f"Input: {what} must be a sequence of ints such as (1, 3, 224, 224), "
                            f"found {type(value).__name__} {value!r}")
    dims = []
    for i, d in enumerate(value):
        if isinstance(d, bool):
            raise TypeError(f"Input: {what}[{i}] must be an int, found bool {d!r}")
        try:
            d = operator.index(d)
        except TypeError:
            raise TypeError(f"Input: {what}[{i}] must be an int, found {type(d).__name__} "
                            f"{d!r}") from None
        if d < 0:
            raise ValueError(f"Input: {what}[{i}] must be >= 0, found {d} (in {tuple(value)})")
        dims.append(d)
    return tuple(dims)


class Input:
    """One input's shape (or shape range), dtype, memory layout and optional name."""

    class _ShapeMode(enum.Enum):
        STATIC = 0
        DYNAMIC = 1

    STATIC = _ShapeMode.STATIC
    DYNAMIC = _ShapeMode.DYNAMIC

    def __init__(self, *args: Any, shape: Any = None, min_shape: Any = None, opt_shape: Any = None,
                 max_shape: Any = None, dtype: Any = None, format: Any = None,  # noqa: A002
                 name: Optional[str] = None) -> None:
        if len(args) > 1:
            raise TypeError(f"Input: expected at most one positional argument (the shape), found "
                            f"{len(args)}")
        if args:
            if shape is not None:
                raise TypeError("Input: the shape was given both positionally and as shape=")
            shape = args[0]
        ranged = {k: v for k, v in zip(_PROFILE_FIELDS, (min_shape, opt_shape, max_shape))
                  if v is not None}
        if shape is not None and ranged:
            raise ValueError("Input: give either a static shape or min_shape/opt_shape/max_shape, "
                             f"not both (found shape and {', '.join(ranged)})")
        if shape is not None:
            static = _as_shape("shape", shape)
            self.shape_mode = Input.STATIC
            self._min = self._opt = self._max = static
        elif ranged:
            missing = [k for k in _PROFILE_FIELDS if k not in ranged]
            if missing:
                raise ValueError("Input: a dynamic input needs min_shape, opt_shape and max_shape; "
                                 f"missing {', '.join(missing)}")
            lo, opt, hi = (_as_shape(k, ranged[k]) for k in _PROFILE_FIELDS)
            if not len(lo) == len(opt) == len(hi):
                raise ValueError("Input: min_shape, opt_shape and max_shape must have the same "
                                 f"rank, found {lo} ({len(lo)}-D), {opt} ({len(opt)}-D) and {hi} "
                                 f"({len(hi)}-D)")
            for i, (a, b, c) in enumerate(zip(lo, opt, hi)):
                if not a <= b <= c:
                    raise ValueError(f"Input: dim {i} must satisfy min <= opt <= max, found min "
                                     f"{a}, opt {b}, max {c} (min_shape={lo}, opt_shape={opt}, "
                                     f"max_shape={hi})")
            self.shape_mode = Input.DYNAMIC
            self._min, self._opt, self._max = lo, opt, hi
        else:
            raise ValueError("Input: expected a shape, e.g. Input((1, 3, 224, 224)), or "
                             "min_shape=, opt_shape= and max_shape=")
        self.dtype: kiln_dtype = kiln_dtype.f32 if dtype is None else kiln_dtype._from(dtype)
        self.format: str = _format_name(format)
        rank = _FORMAT_RANK.get(self.format)
        if rank is not None and len(self._opt) != rank:
            raise ValueError(f"Input: format {self.format} needs a {rank}-D shape, found "
                             f"{len(self._opt)}-D {self._opt}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Input: name must be a str, found {type(name).__name__} {name!r}")
        self.name: Optional[str] = name

    @classmethod
    def from_tensor(cls, tensor: Any, name: Optional[str] = None) -> "Input":
        """A static Input with the tensor's shape, dtype and (channels-last or not) layout."""
        torch = _torch()
        if torch is None or not isinstance(tensor, torch.Tensor):
            raise TypeError(f"Input.from_tensor: expected a torch.Tensor, found "
                            f"{type(tensor).__name__}")
        layout = None
        if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(
                memory_format=torch.channels_last):
            layout = torch.channels_last
        elif tensor.dim() == 5 and not tensor.is_contiguous() and tensor.is_contiguous(
                memory_format=torch.channels_last_3d):
            layout = torch.channels_last_3d
        return cls(tuple(tensor.shape), dtype=tensor.dtype, format=layout, name=name)

    @property
    def shape(self) -> Any:
        """The shape (a tuple) when static; a dict of min_shape, opt_shape, max_shape otherwise."""
        if self.shape_mode is Input.STATIC:
            return self._opt
        return {"min_shape": self._min, "opt_shape": self._opt, "max_shape": self._max}

    @property
    def min_shape(self) -> tuple[int, ...]:
        return self._min

    @property
    def opt_shape(self) -> tuple[int, ...]:
        return self._opt

    @property
    def max_shape(self) -> tuple[int, ...]:
        return self._max

    @property
    def torch_dtype(self) -> Any:
        import torch

        return self.dtype.to(torch.dtype)

    def is_dynamic(self) -> bool:
        return self.shape_mode is Input.DYNAMIC

    def example_tensor(self, optimization_profile_field: str = "opt_shape",
                       device: Any = "cpu") -> Any:
        """A zero-filled tensor of this input's dtype and layout at one profile shape."""
        import torch

        if optimization_profile_field not in _PROFILE_FIELDS:
            raise ValueError(f"Input.example_tensor: optimization_profile_field must be one of "
                             f"{', '.join(_PROFILE_FIELDS)}, found {optimization_profile_field!r}")
        shape = getattr(self, optimization_profile_field)
        t = torch.zeros(shape, dtype=self.torch_dtype, device=device)
        if self.format != "contiguous":
            t = t.contiguous(memory_format=getattr(torch, self.format))
        return t

    def to_spec(self) -> dict:
        """The plain form the C++ core reads: name ("" when unnamed), min/opt/max shapes as lists,
        dtype name ("float32") and layout ("contiguous", "channels_last", "channels_last_3d")."""
        return {"name": self.name or "", "min": list(self._min), "opt": list(self._opt),
                "max": list(self._max), "dtype": self.dtype.value, "format": self.format}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Input):
            return NotImplemented
        return (self.shape_mode, self.to_spec()) == (other.shape_mode, other.to_spec())

    __hash__ = None  # mutable attributes, like torch_tensorrt.Input

    def __repr__(self) -> str:
        extra = "" if self.format == "contiguous" else f", format={self.format}"
        extra += "" if self.name is None else f", name={self.name!r}"
        if self.shape_mode is Input.STATIC:
            return f"kiln.Input(shape={self._opt}, dtype={self.dtype.value}{extra})"
        return (f"kiln.Input(min_shape={self._min}, opt_shape={self._opt}, max_shape={self._max}, "
                f"dtype={self.dtype.value}{extra})")


class TorchOnlyInput:
    """An example tensor's input whose dtype kiln has no element type for (complex64, ...).

    The ops that read it are declined and run in PyTorch (kiln._dtype_support), so kiln only
    keeps what exporting and checking the program need: the static shape and the torch dtype.
    ``kiln.Input`` itself takes kiln's element types only."""

    def __init__(self, shape: Any, torch_dtype: Any, name: Optional[str] = None) -> None:
        self._shape = _as_shape("shape", shape)
        self.torch_dtype = torch_dtype
        self.name = name

    @classmethod
    def from_tensor(cls, tensor: Any, name: Optional[str] = None) -> "TorchOnlyInput":
        return cls(tuple(tensor.shape), tensor.dtype, name)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    min_shape = opt_shape = max_shape = shape

    def is_dynamic(self) -> bool:
        return False

    def example_tensor(self, optimization_profile_field: str = "opt_shape",
                       device: Any = "cpu") -> Any:
        import torch

        return torch.zeros(self._shape, dtype=self.torch_dtype, device=device)

    def to_spec(self) -> dict:
        """As Input.to_spec, with no shapes and no dtype: the C++ core reads a stand-in of this
        input, and takes its shape from the program (a dynamic dim's range from the program and
        the other inputs: one example tensor is no range)."""
        return {"name": self.name or "", "min": [], "opt": [], "max": [], "dtype": "",
                "format": "contiguous"}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TorchOnlyInput):
            return NotImplemented
        return (self._shape, self.torch_dtype, self.name) == (other._shape, other.torch_dtype,
                                                              other.name)

    __hash__ = None

    def __repr__(self) -> str:
        extra = "" if self.name is None else f", name={self.name!r}"
        return (f"kiln.TorchOnlyInput(shape={self._shape}, "
                f"dtype={str(self.torch_dtype).removeprefix('torch.')}{extra})")


def prepare_inputs(obj: Any, where: str = "inputs") -> Any:
    """Turns tensors and Inputs, nested in lists, tuples and dicts, into Inputs of the same
    structure. A tensor becomes a static Input of its shape and dtype (a TorchOnlyInput where
    kiln has no element type for its dtype); None stays None (an omitted optional argument).
    Anything else is a TypeError naming its position, e.g. ``inputs[1]['mask']``."""
    if obj is None or isinstance(obj, (Input, TorchOnlyInput)):
        return obj
    torch = _torch()
    if torch is not None and isinstance(obj, torch.Tensor):
        from kiln._dtype_support import has_element_type

        if not has_element_type(obj.dtype):
            return TorchOnlyInput.from_tensor(obj)
        return Input.from_tensor(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be argument names (str), found "
                                f"{type(key).__name__} {key!r}")
            out[key] = prepare_inputs(value, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        items = [prepare_inputs(value, f"{where}[{i}]") for i, value in enumerate(obj)]
        if isinstance(obj, list):
            return items
        if hasattr(obj, "_fields"):  # a namedtuple keeps its type
            return type(obj)(*items)
        return tuple(items)
    raise TypeError(f"{where}: expected a torch.Tensor or kiln.Input (or a list, tuple or dict of "
                    f"them), found {type(obj).__name__}")
