"""kiln.Device: the device an engine is built for and runs on.

It takes what ``torch_tensorrt.Device`` takes ("cuda:1", ``torch.device``, ``gpu_id=``, keywords),
plus "cpu", where kiln runs its reference backend. kiln has no DLA support, so DLA devices are
rejected with that reason rather than ignored.
"""
from __future__ import annotations

import re
import sys
from typing import Any, Optional

from kiln._enums import DeviceType

_SPEC = re.compile(r"^\s*(cuda|gpu|cpu|dla)\s*(?::\s*(\d+)\s*)?$", re.IGNORECASE)

_NO_DLA = ("kiln has no DLA support: it builds engines for NVIDIA GPUs (device 'cuda:N') and for "
           "its CPU reference backend (device 'cpu')")


def _current_cuda_index() -> int:
    """torch's current CUDA device, or 0 where torch or CUDA is missing."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    try:
        if torch.cuda.is_available():
            return int(torch.cuda.current_device())
    except Exception:  # a broken driver must not make a device name unparseable
        pass
    return 0


def _check_index(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Device: {name} must be an int, found {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"Device: {name} must be >= 0, found {value}")
    return int(value)


class Device:
    """A device: ``Device("cuda:1")``, ``Device("cpu")``, ``Device(torch.device("cuda", 0))``,
    ``Device(gpu_id=0)`` or ``Device(device_type=DeviceType.GPU, gpu_id=1)``.

    Attributes follow ``torch_tensorrt.Device``: ``device_type``, ``gpu_id`` (-1 on the cpu),
    ``dla_core`` (always -1) and ``allow_gpu_fallback`` (kept for compatibility; with no DLA it
    changes nothing). "cuda" without an index means torch's current CUDA device.
    """

    __slots__ = ("device_type", "gpu_id", "dla_core", "allow_gpu_fallback")

    def __init__(self, spec: Any = None, *, device_type: Any = None, gpu_id: Optional[int] = None,
                 dla_core: Optional[int] = None, allow_gpu_fallback: bool = False) -> None:
        if not isinstance(allow_gpu_fallback, bool):
            raise TypeError("Device: allow_gpu_fallback must be True or False, found "
                            f"{allow_gpu_fallback!r}")
        if dla_core is not None and dla_core != -1:
            raise ValueError(f"Device(dla_core={dla_core!r}): {_NO_DLA}")
        if spec is not None and (device_type is not None or gpu_id is not None):
            raise ValueError("Device: give either a device spec like 'cuda:1' or the keywords "
                             f"device_type/gpu_id, not both (found {spec!r} and "
                             f"device_type={device_type!r}, gpu_id={gpu_id!r})")
        if spec is not None:
            kind, index = self._parse(spec)
        elif device_type is None and gpu_id is None:
            raise ValueError("Device: expected a device spec ('cuda:0', 'cpu', a torch.device) or "
                             "gpu_id=; to mean the current device use kiln.Device._from(None)")
        else:
            kind = DeviceType.GPU if device_type is None else DeviceType._from(device_type)
            index = None if gpu_id is None else _check_index("gpu_id", gpu_id)
        if kind is DeviceType.DLA:
            raise ValueError(f"Device({spec if spec is not None else device_type!r}): {_NO_DLA}")
        if kind is DeviceType.CPU:
            if index is not None and index != -1:
                raise ValueError(f"Device: the cpu has no gpu_id, found {index}")
            index = -1
        elif index is None:
            index = _current_cuda_index()
        self.device_type: DeviceType = kind
        self.gpu_id: int = index
        self.dla_core: int = -1
        self.allow_gpu_fallback: bool = allow_gpu_fallback

    @staticmethod
    def _parse(spec: Any) -> tuple[DeviceType, Optional[int]]:
        if isinstance(spec, Device):
            return spec.device_type, spec.gpu_id
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(spec, torch.device):
            if spec.type not in ("cuda", "cpu"):
                raise ValueError(f"Device({spec!r}): kiln runs on 'cuda' and 'cpu' devices, "
                                 f"found a {spec.type!r} device")
            return DeviceType._from(spec.type), spec.index if spec.type == "cuda" else None
        if isinstance(spec, str):
            match = _SPEC.match(spec)
            if match is None:
                raise ValueError(f"Device: cannot parse {spec!r}; expected 'cuda', 'cuda:N' or "
                                 "'cpu'")
            kind = DeviceType._from(match.group(1))
            index = None if match.group(2) is None else int(match.group(2))
            if kind is DeviceType.CPU and index not in (None, 0):
                raise ValueError(f"Device: cannot parse {spec!r}; the cpu takes no index")
            return kind, None if kind is DeviceType.CPU else index
        raise TypeError(f"Device: expected a str, torch.device or kiln.Device, found "
                        f"{type(spec).__name__} {spec!r}")

    @classmethod
    def _from(cls, value: Any) -> "Device":
        """A Device from None (the current CUDA device where torch sees one, else the cpu), a
        str, a torch.device, a dict of Device keywords or a Device."""
        if isinstance(value, Device):
            return value
        if value is None:
            torch = sys.modules.get("torch")
            try:
                has_cuda = torch is not None and torch.cuda.is_available()
            except Exception:
                has_cuda = False
            if has_cuda:
                return cls(gpu_id=int(torch.cuda.current_device()))
            return cls("cpu")
        if isinstance(value, dict):
            return cls(**value)
        return cls(value)

    @property
    def is_cuda(self) -> bool:
        return self.device_type is DeviceType.GPU

    def to_torch_device(self) -> Any:
        import torch

        if self.device_type is DeviceType.CPU:
            return torch.device("cpu")
        return torch.device("cuda", self.gpu_id)

    def __str__(self) -> str:
        return "cpu" if self.device_type is DeviceType.CPU else f"cuda:{self.gpu_id}"

    def __repr__(self) -> str:
        return f"kiln.Device({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Device):
            return NotImplemented
        return (self.device_type, self.gpu_id) == (other.device_type, other.gpu_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.gpu_id))
