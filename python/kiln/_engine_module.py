"""Engines inside torch programs: the ``kiln::execute_engine`` custom op and the ``nn.Module``
that calls it (the ``_run_on_acc_N`` submodules of a compiled module).

The engine's bytes are a uint8 buffer of the module, so ``torch.export`` of a compiled module keeps
each engine as a constant of the saved program and a fresh process restores it with
``torch.export.load`` (after ``import kiln``, which registers the op). The op's other argument is a
small JSON description (input and output dtypes and symbolic shapes, and a digest of the engine
bytes): the fake implementation reads shapes from it while tracing, and the real one finds the
loaded engine by its digest.
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import warnings
from typing import Any, Optional

import torch

from kiln import _C, _sym_eval
from kiln.errors import InvalidArgumentError

_LOADED: dict[tuple, "_C.Engine"] = {}  # (engine digest, GPU index or None) -> engine
_LOADED_LOCK = threading.Lock()


def _load_engine(data, weight_names: list, weights: list) -> "_C.Engine":
    """``data``: the engine's bytes (bytes, or a uint8 array the C++ side reads in place)."""
    if not weight_names:
        return _C.Engine(data)
    # Built with strip_engine_weights: the program carries the weights, the engine only their names.
    runtime = _C.Engine(data, allow_stripped=True)
    runtime.refit({name: w.detach().cpu().contiguous() for name, w in zip(weight_names, weights)})
    return runtime


def _engine_device(meta: dict) -> Optional[torch.device]:
    """The GPU a CUDA engine runs on: ``meta["device"]``, the ``device`` it was compiled for
    ("cuda:N"). None where the engine runs on the CPU, where the description names no index (saved
    by an older kiln: the inputs' device then), or where this machine has no such GPU (with a
    warning, once: the inputs' device then). Worked out once per description, not per call."""
    return _gpu_named(meta.get("device", "cpu"), meta.get("name"))


@functools.lru_cache(maxsize=256)
def _gpu_named(name: str, engine: Optional[str]) -> Optional[torch.device]:
    if not name.startswith("cuda"):
        return None
    device = torch.device(name)
    if device.index is None:
        return None
    count = torch.cuda.device_count()
    if device.index >= count:
        warnings.warn(f"kiln: engine '{engine}' was compiled for {device}, but this machine has "
                      f"{count} GPU(s); it runs on its inputs' GPU instead", stacklevel=4)
        return None
    return device


_WARNED: set = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, stacklevel=4)


def _engine_from(engine: torch.Tensor, meta: dict, weights: list,
                 device: Optional[torch.device] = None) -> "_C.Engine":
    """The engine loaded, once per process and GPU (``device``; None for the CPU backend)."""
    key = (meta["digest"], None if device is None else device.index)
    runtime = _LOADED.get(key)
    if runtime is not None:
        return runtime
    with _LOADED_LOCK:
        runtime = _LOADED.get(key)
        if runtime is None:
            data = engine.detach().cpu().contiguous().numpy()  # read in place, copied once
            with _on_device(device):
                runtime = _load_engine(data, meta.get("weights", []), weights)
            _LOADED[key] = runtime
    return runtime


def _on_device(device: Optional[torch.device]):
    """A context that makes ``device`` torch's (and so CUDA's) current device; a no-op for None."""
    return torch.cuda.device(device) if device is not None else contextlib.nullcontext()


def _device_type(meta: dict) -> str:
    """"cpu" or "cuda": the kind of device an engine's inputs must be on ("cuda:1" -> "cuda")."""
    return meta.get("device", "cpu").split(":", 1)[0]


def _check_inputs(name: str, inputs: list, meta: dict) -> None:
    expected = meta["inputs"]
    if len(inputs) != len(expected):
        raise InvalidArgumentError(
            f"engine '{name}': expected {len(expected)} inputs, found {len(inputs)}")
    device = _device_type(meta)
    for i, (t, spec) in enumerate(zip(inputs, expected)):
        if not isinstance(t, torch.Tensor):
            raise InvalidArgumentError(
                f"engine '{name}' input {i} ('{spec['name']}'): expected a tensor, found "
                f"{type(t).__name__}")
        if t.device.type != device:
            raise InvalidArgumentError(
                f"engine '{name}' input {i} ('{spec['name']}'): expected a tensor on {device} (the "
                f"engine runs on kiln's {meta.get('backend', 'cpu')} backend), found one on "
                f"{t.device}")


@functools.lru_cache(maxsize=256)
def _parse_meta(meta: str) -> dict:
    return json.loads(meta)


def _run_cuda(engine: torch.Tensor, inputs: list, description: dict, weights: list) -> list:
    """Runs a GPU engine on its GPU (_engine_device; else the inputs') on torch's current stream
    there: outputs are allocated by torch (its caching allocator), inputs and outputs cross to kiln
    as device pointers, no copies. Inputs on another GPU are copied to the engine's, with a warning
    once per engine, and its outputs stay there (as Torch-TensorRT does)."""
    device = _engine_device(description)
    if device is None:
        device = inputs[0].device if inputs else torch.device("cuda", torch.cuda.current_device())
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if any(t.device != device for t in inputs):
        found = sorted({str(t.device) for t in inputs if t.device != device})
        _warn_once(f"moved:{description['digest']}:{device}",
                   f"kiln: engine '{description['name']}' runs on {device} (its compile device); "
                   f"inputs on {', '.join(found)} are copied there each call, and its outputs are "
                   f"on {device}. Pass inputs on {device}, or compile with device='{found[0]}'")
        inputs = [t.to(device) for t in inputs]
    tensors = [t.detach() if t.is_contiguous() else t.detach().contiguous() for t in inputs]
    runtime = _engine_from(engine, description, weights, device)
    with _on_device(device if device.index != torch.cuda.current_device() else None):
        shapes = runtime.cuda_output_shapes(tensors)
        outputs = [torch.empty(shape, dtype=getattr(torch, spec["dtype"]), device=device)
                   for shape, spec in zip(shapes, description["outputs"])]
        runtime.run_cuda(tensors, outputs, torch.cuda.current_stream(device).cuda_stream)
    return outputs


_UNBACKED = re.compile(r"\bu[0-9]+\b")


@torch.library.custom_op("kiln::execute_engine", mutates_args=())
def execute_engine(inputs: list[torch.Tensor], engine: torch.Tensor, meta: str,
                   weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Runs a kiln engine (its bytes in ``engine``) on ``inputs``; returns its outputs.

    ``weights`` is empty unless the engine was built with strip_engine_weights (then they are the
    weights named in ``meta``, in order)."""
    description = _parse_meta(meta)
    _check_inputs(description["name"], inputs, description)
    if description.get("backend") == "cuda":
        return _run_cuda(engine, inputs, description, weights)
    runtime = _engine_from(engine, description, weights)
    outputs = runtime.run([t.detach() for t in inputs])
    return [o if isinstance(o, torch.Tensor) else torch.tensor(o) for o in outputs]


@execute_engine.register_fake
def _execute_engine_fake(inputs, engine, meta, weights):
    description = _parse_meta(meta)
    bindings: dict[str, Any] = {}
    for t, spec in zip(inputs, description["inputs"]):
        for size, dim in zip(t.shape, spec["dims"]):
            if isinstance(dim, str) and dim.isidentifier() and dim not in bindings:
                bindings[dim] = size
    device = _engine_device(description) or (
        inputs[0].device if inputs else torch.device(description.get("device", "cpu")))
    outputs = []
    for spec in description["outputs"]:
        for dim in spec["dims"]:
            # A size only the data determines (nonzero's row count: PyTorch's unbacked u0, u1,
            # ...) is a new unbacked size for the tracer, one per symbol and call.
            for name in _UNBACKED.findall(dim) if isinstance(dim, str) else ():
                if name not in bindings:
                    bindings[name] = torch.library.get_ctx().new_dynamic_size()
        shape = [d if isinstance(d, int) else _sym_eval.evaluate(d, bindings)
                 for d in spec["dims"]]
        outputs.append(torch.empty(shape, dtype=getattr(torch, spec["dtype"]), device=device))
    return outputs


def describe_bindings(runtime: "_C.Engine", digest: str, weight_names: list,
                      gpu_id: Optional[int] = None) -> str:
    """The custom op's description of an engine; ``gpu_id``: the GPU a CUDA engine runs on."""
    info = runtime.info
    if info["backend"] == "cpu":
        device = "cpu"
    else:
        device = "cuda" if gpu_id is None else f"cuda:{gpu_id}"
    meta = {
        "weights": weight_names,
        "name": info["name"],
        "backend": info["backend"],
        "device": device,
        "digest": digest,
        "inputs": [{"name": b["name"], "dtype": b["dtype"], "dims": b["dims"]}
                   for b in runtime.inputs],
        "outputs": [{"name": b["name"], "dtype": b["dtype"], "dims": b["dims"]}
                    for b in runtime.outputs],
    }
    return json.dumps(meta, sort_keys=True)


class KilnEngineModule(torch.nn.Module):
    """A kiln engine as a module: ``forward(*tensors)`` returns a tuple of the engine's outputs.

    Checks count and device here and dtype, shape and dynamic ranges in C++, each failure naming
    the engine, the input and what was expected and found.
    """

    def __init__(self, engine_bytes: bytes, name: Optional[str] = None, *,
                 lazy: bool = False, weights: Optional[dict] = None,
                 gpu_id: Optional[int] = None):
        """``gpu_id``: the GPU a CUDA engine is loaded on and runs on (kiln.compile's ``device``);
        None: torch's current device at load, and the inputs' device at each call."""
        super().__init__()
        digest = _C.digest(engine_bytes)
        buffer = torch.frombuffer(bytearray(engine_bytes), dtype=torch.uint8)
        self.register_buffer("engine", buffer)
        self._digest = digest
        # Stripped engines: the weights live here, as buffers, in the engine's weight-name order.
        self._weight_names = list(weights) if weights else []
        for i, name in enumerate(self._weight_names):
            self.register_buffer(f"weight_{i}", weights[name].detach())
        self._runtime: Optional[_C.Engine] = None
        self._meta: Optional[str] = None
        self._name = name
        self._gpu_id = gpu_id
        if not lazy:
            self.setup_engine(engine_bytes)

    def setup_engine(self, data: Optional[bytes] = None) -> None:
        """Loads (and verifies) the engine now rather than at the first call."""
        if self._runtime is not None:
            return
        if data is None:
            data = self.engine.numpy().tobytes()
        device = None if self._gpu_id is None else torch.device("cuda", self._gpu_id)
        with _on_device(device):
            runtime = _load_engine(data, self._weight_names, self._weight_tensors())
        self._runtime = runtime
        self._meta = describe_bindings(runtime, self._digest, self._weight_names, self._gpu_id)
        with _LOADED_LOCK:
            _LOADED[(self._digest, self._gpu_id)] = runtime

    @property
    def runtime(self) -> "_C.Engine":
        self.setup_engine()
        return self._runtime

    @property
    def input_names(self) -> list[str]:
        return [b["name"] for b in self.runtime.inputs]

    @property
    def output_names(self) -> list[str]:
        return [b["name"] for b in self.runtime.outputs]

    def describe(self) -> str:
        return self.runtime.describe()

    def _weight_tensors(self) -> list:
        return [getattr(self, f"weight_{i}") for i in range(len(self._weight_names))]

    def forward(self, *inputs: torch.Tensor):
        self.setup_engine()
        outputs = torch.ops.kiln.execute_engine(list(inputs), self.engine, self._meta,
                                                self._weight_tensors())
        return tuple(outputs)

    def extra_repr(self) -> str:
        if self._runtime is None:
            return f"name={self._name!r}, engine not loaded yet"
        info = self._runtime.info
        return (f"name={info['name']!r}, backend={info['backend']} {info['arch']}, "
                f"inputs={self.input_names}, outputs={self.output_names}")
