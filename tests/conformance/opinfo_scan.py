"""Finding concrete aten-level calls for each (overload, dtype) in PyTorch's OpInfo samples.

How a sample is found. Every OpInfo of ``op_db`` that supports the dtype on the CPU runs its
``reference_inputs`` (its ``sample_inputs`` plus, for elementwise ops, extremal values, large
values, broadcasting and type-promotion cases) under a TorchDispatchMode that sees every aten
overload call below the Python layer, with its exact arguments. A call of an overload under test
is kept, its tensors cloned with their strides and storage offset, when one of its tensors
(an input, or the output of a factory op) has the dtype being scanned. So ``aten.amax.default``
gets samples from the ``amax`` OpInfo and from every other OpInfo whose eager kernel calls it.

CompositeImplicitAutograd ops (``linear``, ``softmax.int``, ``var.dim``, ...) decompose before any
dispatch mode sees them. For those, the scan registers a kernel at the AutogradCPU key that
records the call and runs the op's own C++ decomposition, as eager does. Overloads eager never
calls directly get calls rewritten from a sibling (``sibling_sources``: ``fmod.Scalar`` from
``fmod.Tensor``, ``atan2.out`` from ``atan2``, ``copy`` from ``copy_``, and the few ops only
torch.export emits, or eager calls only with autograd on, from the op the scan sees instead),
and ``*_backward`` ops get a backward pass.

:func:`plan_dtype` then keeps, per overload, the samples a run uses (samples.select: edge cases
first, within the budget). OpInfo generators are seeded per OpInfo, so a plan is deterministic.

Nothing is cached on disk: a scan is a pure function of the installed torch.
"""
from __future__ import annotations

import contextlib
import itertools
import sys
import types
import unittest
import warnings
from typing import Any, Callable, Iterable, Optional

import torch
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode

from conformance.hand_samples import hand_samples
from conformance.ops import resolve
from conformance.samples import (DTYPES, Sample, bind_arguments, clone_tree, derive_edge_cases,
                                 eager_features, features_of, is_scalar_type, select)

_SCAN_CANDIDATE_LIMIT = 64         # distinct calls kept per (overload, dtype) while scanning
_SIBLING_CANDIDATE_LIMIT = 8       # distinct calls kept per sibling overload
_BACKWARD_SAMPLES_PER_OPINFO = 4   # samples differentiated per OpInfo in the backward pass
_MAX_SAMPLE_ELEMENTS = 1 << 16     # larger calls are skipped: they test nothing more, slower


class SamplesUnavailable(RuntimeError):
    """torch's testing internals (op_db) cannot be imported here."""


# --- torch's OpInfo database ---------------------------------------------------------------------

def _ensure_expecttest() -> None:
    """torch.testing._internal.common_utils imports ``expecttest`` (a helper of torch's own test
    suite) to derive its TestCase class at import time; the OpInfo sample functions never use it.
    Where it is not installed, a stand-in module with that base class lets op_db import."""
    try:
        import expecttest  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("expecttest")
        stand_in.TestCase = unittest.TestCase
        stand_in.ACCEPT = False
        sys.modules["expecttest"] = stand_in


def load_op_db() -> list:
    """PyTorch's OpInfo list, or :class:`SamplesUnavailable` saying why not."""
    _ensure_expecttest()
    try:
        from torch.testing._internal.common_methods_invocations import op_db
    except Exception as error:  # noqa: BLE001 - any failure means: no samples on this install
        raise SamplesUnavailable(
            f"torch.testing._internal.common_methods_invocations does not import "
            f"({type(error).__name__}: {error})") from error
    return list(op_db)


@contextlib.contextmanager
def _lean_opinfo_iteration():
    """OpInfo sample iterators look up the running unittest test by walking the stack
    (``inspect.stack()``, some 20 ms a generator) and reseed before every sample through
    ``torch.manual_seed``, which also queues a CUDA/XPU/MTIA seeding call with a formatted stack
    trace where those are not initialized. Together they are most of a scan's time. The scan has
    no test to find and makes its samples on the CPU, so for its duration the test lookup finds
    nothing (as it would anyway) and reseeding seeds the CPU generators only: the same samples."""
    import random

    from torch.testing._internal import common_utils
    from torch.testing._internal.opinfo import core

    def seed_cpu_generators(seed=None):
        seed = common_utils.SEED if seed is None else seed
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        try:
            import numpy

            numpy.random.seed(seed)
        except ImportError:
            pass

    saved = (common_utils.extract_test_fn, core.extract_test_fn, common_utils.set_rng_seed)
    common_utils.extract_test_fn = core.extract_test_fn = lambda: None
    common_utils.set_rng_seed = seed_cpu_generators
    try:
        yield
    finally:
        common_utils.extract_test_fn, core.extract_test_fn, common_utils.set_rng_seed = saved


def _opinfo_label(opinfo) -> str:
    variant = getattr(opinfo, "variant_test_name", "")
    return f"{opinfo.name}.{variant}" if variant else opinfo.name


def _seed_of(label: str) -> int:
    """A per-OpInfo seed, so that its samples do not depend on which OpInfos ran before it."""
    return sum((i + 1) * ord(c) for i, c in enumerate(label)) % (2 ** 31)


# --- recording -----------------------------------------------------------------------------------

def _signature(op_name: str, args: tuple, kwargs: dict, features: tuple) -> str:
    """What makes two calls the same test: shapes, strides, dtypes and non-tensor arguments."""
    def describe(x):
        if isinstance(x, torch.Tensor):
            return ("T", tuple(x.shape), tuple(x.stride()), str(x.dtype))
        return repr(x)

    leaves, spec = _pytree.tree_flatten((args, kwargs))
    return repr((op_name, [describe(x) for x in leaves], str(spec), features))


class _Bucket:
    """The distinct calls of one overload seen while scanning one dtype."""

    def __init__(self, limit: int):
        self.limit = limit
        self.samples: list[Sample] = []
        self.seen: set[str] = set()

    def full(self) -> bool:
        return len(self.samples) >= self.limit


class _CallRecorder(TorchDispatchMode):
    """Records calls of the wanted overloads whose tensors include the scanned dtype.

    ``limits`` caps the distinct calls kept per overload. ``seen`` collects the name of every
    overload called since it was last cleared (the scan uses it to find OpInfos worth a
    backward pass)."""

    def __init__(self, limits: dict[str, int], dtype: torch.dtype, dtype_name: str):
        super().__init__()
        self.limits = limits
        self.dtype = dtype
        self.dtype_name = dtype_name
        self.buckets: dict[str, _Bucket] = {}
        self.origin = ""
        self.seen: set[str] = set()
        self._names: dict[Any, str] = {}

    def name_of(self, func) -> str:
        name = self._names.get(func)
        if name is None:
            name = self._names[func] = str(func)
        return name

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = self.name_of(func)
        self.seen.add(name)
        if name not in self.limits:
            return func(*args, **kwargs)
        mutable = func._schema.is_mutable
        before = clone_tree((args, kwargs)) if mutable else None
        output = func(*args, **kwargs)
        self.offer(name, before if mutable else (args, kwargs), output, cloned=mutable)
        return output

    def offer(self, name: str, call: tuple, output: Any, cloned: bool) -> None:
        args, kwargs = call
        bucket = self.buckets.setdefault(name, _Bucket(self.limits[name]))
        if bucket.full():
            return
        leaves = _pytree.tree_leaves((args, kwargs, output))
        if not any(isinstance(x, torch.Tensor) and x.dtype == self.dtype for x in leaves):
            return
        if not all(_usable_input(x) for x in _pytree.tree_leaves((args, kwargs))):
            return
        try:
            features = features_of(name, tuple(args), dict(kwargs), output)
        except Exception:  # noqa: BLE001 - a call the schema cannot bind is not a usable sample
            return
        key = _signature(name, tuple(args), dict(kwargs), features)
        if key in bucket.seen:
            return
        bucket.seen.add(key)
        args, kwargs = (args, kwargs) if cloned else clone_tree((tuple(args), dict(kwargs)))
        bucket.samples.append(Sample(name, self.dtype_name, tuple(args), dict(kwargs),
                                     self.origin, features))


def _usable_input(x) -> bool:
    """CPU dense tensors of a modest size (any non-tensor argument is usable)."""
    if not isinstance(x, torch.Tensor):
        return True
    if x.device.type != "cpu" or x.layout != torch.strided or x.is_quantized:
        return False
    return x.untyped_storage().nbytes() <= _MAX_SAMPLE_ELEMENTS * x.element_size()


@contextlib.contextmanager
def _recording_composite_ops(recorder: _CallRecorder, overloads: Iterable[str]):
    """Makes CompositeImplicitAutograd overloads visible to ``recorder``.

    Such an op has no kernel of its own below autograd: its decomposition runs at the autograd
    key, before any dispatch mode sees the call. For the scan, a kernel registered at AutogradCPU
    (through torch.library, removed afterwards) records the call and then runs the op's C++
    decomposition, exactly what eager runs, so autograd and the calls below are unchanged.
    """
    from torch._C import DispatchKey

    key = DispatchKey.CompositeImplicitAutograd
    library = torch.library.Library("aten", "IMPL")
    try:
        for name in overloads:
            overload = resolve(name)
            if not torch._C._dispatch_has_kernel_for_dispatch_key(overload.name(), key):
                continue

            def record_then_decompose(*args, _overload=overload, _name=name, **kwargs):
                mutable = _overload._schema.is_mutable
                before = clone_tree((args, kwargs)) if mutable else None
                output = _overload._op_dk(key, *args, **kwargs)
                recorder.offer(_name, before if mutable else (args, kwargs), output,
                               cloned=mutable)
                return output

            schema_name = overload.name().split("::", 1)[1]  # "linear", "softmax.int"
            library.impl(schema_name, record_then_decompose, "AutogradCPU")
        yield
    finally:
        library._destroy()


def scan_dtype(op_db: list, wanted: Iterable[str], dtype_name: str,
               max_samples_per_opinfo: Optional[int] = None,
               candidate_limit: int = _SCAN_CANDIDATE_LIMIT,
               progress: Optional[Callable[[str], None]] = None) -> dict[str, list[Sample]]:
    """Runs every OpInfo that supports ``dtype_name`` on the CPU and returns the distinct calls
    of each wanted overload (in recording order), at most ``candidate_limit`` per overload.

    Three more sources fill overloads eager rarely calls directly:
    - sibling overloads (:func:`sibling_sources`): a ``.Scalar`` overload from its ``.Tensor``
      sibling's calls with a 0-dim tensor operand, an ``.out`` overload from the functional one,
      a functional op from its in-place twin (``copy`` from ``copy_``);
    - a backward pass: an OpInfo that calls the forward op of a wanted ``*_backward`` overload
      runs its first samples again with ``requires_grad`` and differentiates them;
    - hand-written samples (hand_samples.py) for overloads no OpInfo reaches.
    """
    dtype = DTYPES[dtype_name]
    wanted = sorted(set(wanted))
    sources = sibling_sources(wanted)
    limits = {name: _SIBLING_CANDIDATE_LIMIT for targets in sources.values()
              for name in targets}
    limits.update({name: candidate_limit for name in wanted})
    backward_of = _backward_ops_by_forward(wanted)
    recorder = _CallRecorder(limits, dtype, dtype_name)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        with _lean_opinfo_iteration(), _recording_composite_ops(recorder, sorted(limits)):
            for opinfo in op_db:
                recorder.seen.clear()
                if not _scan_opinfo(opinfo, recorder, dtype, max_samples_per_opinfo):
                    continue
                missing = [b for f in recorder.seen & set(backward_of) for b in backward_of[f]
                           if not recorder.buckets.get(b) or not recorder.buckets[b].full()]
                if missing and dtype.is_floating_point:
                    _scan_opinfo_backward(opinfo, recorder, dtype, _BACKWARD_SAMPLES_PER_OPINFO)
    found = {name: recorder.buckets[name].samples for name in wanted
             if name in recorder.buckets and recorder.buckets[name].samples}
    for name in wanted:
        if name not in found:
            rewritten = _from_siblings(name, sources.get(name, []), recorder.buckets)
            if rewritten:
                found[name] = rewritten
        if name not in found:
            written = hand_samples(name, dtype_name)
            if written:
                found[name] = written
    if progress:
        progress(f"scanned {dtype_name}: {sum(len(v) for v in found.values())} distinct calls of "
                 f"{len(found)} overloads")
    return found


def _scan_opinfo(opinfo, recorder: _CallRecorder, dtype: torch.dtype,
                 max_samples: Optional[int]) -> bool:
    """Records the OpInfo's reference inputs at ``dtype``; False where it does not support it."""
    try:
        if dtype not in opinfo.supported_dtypes("cpu"):
            return False
    except Exception:  # noqa: BLE001 - an OpInfo that cannot say is skipped
        return False
    label = _opinfo_label(opinfo)
    torch.manual_seed(_seed_of(label))
    try:
        generator = opinfo.reference_inputs("cpu", dtype, requires_grad=False)
        for index, sample in enumerate(itertools.islice(generator, max_samples)):
            recorder.origin = f"{label}#{index}"
            try:
                with recorder:
                    opinfo.op(sample.input, *sample.args, **sample.kwargs)
            except Exception:  # noqa: BLE001 - the calls that succeeded before it still count
                pass
    except Exception:  # noqa: BLE001 - a generator that fails ends that OpInfo's samples
        pass
    return True


def _scan_opinfo_backward(opinfo, recorder: _CallRecorder, dtype: torch.dtype,
                          max_samples: int) -> None:
    """Records the calls of a backward pass over the OpInfo's first samples."""
    if not getattr(opinfo, "supports_autograd", False):
        return
    label = _opinfo_label(opinfo)
    torch.manual_seed(_seed_of(label))
    try:
        generator = opinfo.sample_inputs("cpu", dtype, requires_grad=True)
        for index, sample in enumerate(itertools.islice(generator, max_samples)):
            recorder.origin = f"{label}#{index} backward"
            inputs = [t for t in _pytree.tree_leaves((sample.input, sample.args, sample.kwargs))
                      if isinstance(t, torch.Tensor) and t.requires_grad]
            try:
                with torch.enable_grad(), recorder:
                    output = opinfo.op(sample.input, *sample.args, **sample.kwargs)
                    outputs = [t for t in _pytree.tree_leaves(output)
                               if isinstance(t, torch.Tensor) and t.requires_grad]
                    if outputs and inputs:
                        gradients = [torch.linspace(-1, 1, t.numel(), dtype=t.dtype)
                                     .reshape(t.shape) for t in outputs]
                        torch.autograd.grad(outputs, inputs, gradients, allow_unused=True)
            except Exception:  # noqa: BLE001 - as in the forward scan
                pass
    except Exception:  # noqa: BLE001
        pass


def _backward_ops_by_forward(wanted: list[str]) -> dict[str, list[str]]:
    """"aten.convolution.default" -> ["aten.convolution_backward.default"], by name: the forward
    of X_backward is X, or X without its last word (embedding_dense_backward: embedding)."""
    forward_of: dict[str, list[str]] = {}
    for name in wanted:
        _, packet, _ = name.split(".")
        if not packet.endswith("_backward"):
            continue
        base = packet[: -len("_backward")]
        for forward in (base, base.rsplit("_", 1)[0]):
            forward_of.setdefault(f"aten.{forward}.default", []).append(name)
    return forward_of


# --- sibling overloads ---------------------------------------------------------------------------

def _arguments(name: str):
    return list(resolve(name)._schema.arguments)


def _is_out_argument(argument) -> bool:
    return argument.kwarg_only and argument.alias_info is not None and \
        argument.alias_info.is_write


def _batch_norm_in_eval(bound: dict) -> Optional[tuple[tuple, dict]]:
    """native_batch_norm(training=False) as _native_batch_norm_legit_no_training."""
    if bound.get("training") or bound.get("running_mean") is None \
            or bound.get("running_var") is None:
        return None
    names = ("input", "weight", "bias", "running_mean", "running_var", "momentum", "eps")
    return tuple(bound[n] for n in names), {}


def _same_arguments(bound: dict) -> Optional[tuple[tuple, dict]]:
    return tuple(bound.values()), {}


def _dropout_as_native(bound: dict) -> Optional[tuple[tuple, dict]]:
    """dropout(input, p, train) as native_dropout (what export emits; eager's CPU kernel does
    not call it)."""
    return (bound["input"], bound["p"], bound["train"]), {}


# Ops that torch.export emits, or eager calls only with autograd on, where the no-grad eager scan
# sees another op instead: target -> (the op the scan sees, how its call becomes the target's).
_EXPORT_ONLY_OPS = {
    "aten._embedding_bag.default":
        ("aten._embedding_bag_forward_only.default", _same_arguments),
    "aten._native_batch_norm_legit_no_training.default":
        ("aten.native_batch_norm.default", _batch_norm_in_eval),
    "aten.native_dropout.default": ("aten.dropout.default", _dropout_as_native),
}


def _sibling_kind(target: str, source: str) -> Optional[str]:
    """How a call of ``source`` becomes a call of ``target``: "scalar" (Tensor operands become
    Scalars), "out" (add empty out= tensors), "functional" (drop the in-place), "export" (an
    _EXPORT_ONLY_OPS rewrite), or None."""
    if _EXPORT_ONLY_OPS.get(target, (None,))[0] == source:
        return "export"
    try:
        t_args, s_args = _arguments(target), _arguments(source)
    except (AttributeError, RuntimeError):
        return None
    t_packet, s_packet = target.split(".")[1], source.split(".")[1]
    if s_packet == t_packet + "_":
        same = [(a.name, str(a.type)) for a in t_args] == [(a.name, str(a.type)) for a in s_args]
        return "functional" if same else None
    if s_packet != t_packet or target == source:
        return None
    t_plain = [a for a in t_args if not _is_out_argument(a)]
    if len(t_plain) < len(t_args) and not any(_is_out_argument(a) for a in s_args):
        same = [(a.name, str(a.type)) for a in t_plain] == [(a.name, str(a.type)) for a in s_args]
        return "out" if same else None
    if len(t_args) != len(s_args) or any(_is_out_argument(a) for a in t_args + s_args):
        return None
    scalar_positions = 0
    for a, b in zip(t_args, s_args):
        if a.name != b.name:
            return None
        if str(a.type) == str(b.type):
            continue
        if is_scalar_type(a) and str(b.type) == "Tensor":
            scalar_positions += 1
            continue
        return None
    return "scalar" if scalar_positions else None


def sibling_sources(wanted: list[str]) -> dict[str, list[str]]:
    """For each wanted overload, the overloads whose calls can be rewritten into it."""
    sources: dict[str, list[str]] = {}
    for target in wanted:
        namespace, packet, _ = target.split(".")
        candidates = []
        for name in (packet, packet + "_"):
            packet_object = getattr(getattr(torch.ops, namespace), name, None)
            if packet_object is None:
                continue
            candidates += [f"{namespace}.{name}.{o}" for o in packet_object.overloads()]
        found = [c for c in candidates if _sibling_kind(target, c)]
        if target in _EXPORT_ONLY_OPS:
            found.append(_EXPORT_ONLY_OPS[target][0])
        if found:
            sources[target] = found
    return sources


def _from_siblings(target: str, siblings: list[str], buckets: dict) -> list[Sample]:
    """Calls of ``target`` rewritten from its siblings' recorded calls (each checked eagerly)."""
    rewritten = []
    for source in siblings:
        bucket = buckets.get(source)
        if not bucket:
            continue
        kind = _sibling_kind(target, source)
        for sample in bucket.samples:
            call = _rewrite(sample, target, source, kind)
            if call is None:
                continue
            features = eager_features(call)
            if features is not None:
                call.features = features
                rewritten.append(call)
    return rewritten


def _rewrite(sample: Sample, target: str, source: str, kind: str) -> Optional[Sample]:
    bound = bind_arguments(resolve(source), sample.args, sample.kwargs)
    if kind == "export":
        call = _EXPORT_ONLY_OPS[target][1](bound)
        if call is None:
            return None
        return Sample(target, sample.dtype, call[0], call[1], f"{sample.origin} via {source}")
    target_arguments = _arguments(target)
    args, kwargs = [], {}
    for argument in target_arguments:
        if _is_out_argument(argument):
            continue
        if argument.name not in bound:
            continue
        value = bound[argument.name]
        if kind == "scalar" and is_scalar_type(argument):
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                return None
            value = value.item()
        if argument.kwarg_only:
            kwargs[argument.name] = value
        else:
            args.append(value)
    if kind == "out":
        try:
            call_args, call_kwargs = clone_tree((sample.args, sample.kwargs))
            with torch.no_grad():
                result = resolve(source)(*call_args, **call_kwargs)
        except Exception:  # noqa: BLE001
            return None
        results = [r for r in _pytree.tree_leaves(result) if isinstance(r, torch.Tensor)]
        outs = [a for a in target_arguments if _is_out_argument(a)]
        if len(outs) != len(results):
            return None
        for argument, value in zip(outs, results):
            # Sized like the result: torch.export does not resize an out= argument.
            kwargs[argument.name] = torch.zeros(value.shape, dtype=value.dtype)
    return Sample(target, sample.dtype, tuple(args), kwargs,
                  f"{sample.origin} via {source}", (), "")


def plan_dtype(op_db: list, wanted: Iterable[str], dtype_name: str, budget: Optional[int],
               max_samples_per_opinfo: Optional[int] = None,
               progress: Optional[Callable[[str], None]] = None) -> dict[str, list[Sample]]:
    """The samples a run uses for each wanted overload at one dtype: scan, derive, select."""
    candidates = scan_dtype(op_db, wanted, dtype_name, max_samples_per_opinfo,
                            progress=progress)
    plan = {}
    for name in sorted(candidates):
        pool = candidates[name] + derive_edge_cases(candidates[name])
        plan[name] = select(pool, budget)
    return plan
