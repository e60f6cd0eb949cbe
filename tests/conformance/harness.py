"""Recorded aten calls through kiln, compared with eager.

The samples run as one tiny module whose ``forward`` calls each sample's overload
(``torch.ops.aten.X.ovl``), every tensor argument a forward input and every other argument baked
in. It is exported with ``torch.export``, compiled with ``kiln.compile(min_block_size=1,
require_full_compilation=True, pass_through_build_failures=True, disable_tf32=True)`` for the
device, run, and each sample's outputs are compared with eager on the same device and dtype
(compare.py), TF32 off on both sides. Export and
lowering cost about half a second whatever the program's size, so the samples of an (op, dtype),
and of several ops kiln claims (sweep.py), share one program; where it does not pass cleanly,
each op, then each sample, is retried alone to say which fails and why.

Inputs keep their layout: a non-contiguous sample reaches the module with its strides and storage
offset, torch.export records them, and each outcome notes whether the engine module received the
strided tensor. The reference backend takes it as is (python/tensor_bridge.cc reads strides); the
CUDA engine module copies inputs contiguous before the engine (kiln/_engine_module.py), so on
CUDA strided inputs exercise that copy, not strided kernels.

Outcomes: ``pass``; ``fail`` (a wrong value, dtype or shape, or an error while compiling or
running that is not kiln declining the op); ``unsupported`` (kiln declines: its partitioner's
``UnsupportedError`` under require_full_compilation, or no engine was built at all because the
lowered program left kiln nothing to run); ``skipped`` (the sample itself does not run eagerly
on the device, or torch.export rejects it: not kiln's doing).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from typing import Optional

import torch
from torch.utils import _pytree

from conformance.compare import (WIDER_REFERENCES, check_properties, compare_outputs,
                                 compare_tied_indices, compare_value)
from conformance.ops import resolve
from conformance.repro import repro_script
from conformance.samples import DTYPES, Sample


# Ops whose outputs are not a function of their inputs. Their outputs are compared by shape and
# dtype, plus the properties compare.check_properties knows. Uninitialized memory has no values
# to check; seeded random ops (torch.Tag.nondeterministic_seeded) draw from generators kiln does
# not share with torch. A seeded op whose sample is deterministic (dropout_p=0) is compared in
# full: eager runs it twice under different seeds and only differing results count as random.
UNINITIALIZED_OUTPUT_OPS = frozenset({
    "aten.empty.memory_format", "aten.empty_strided.default", "aten.empty_like.default",
    "aten.new_empty.default", "aten.new_empty_strided.default", "aten.empty_permuted.default",
})

# Ops whose result depends on the inputs' layout, not only on their values: a strided sample of
# these is not checked against contiguous copies of its inputs (see _eager).
LAYOUT_DEPENDENT_OPS = frozenset({
    "aten.as_strided.default", "aten.as_strided_copy.default", "aten.as_strided_scatter.default",
})


@dataclasses.dataclass
class SampleOutcome:
    """What happened to one sample."""

    status: str                          # "pass", "fail", "unsupported", "skipped"
    sample: str                          # Sample.describe()
    origin: str
    features: tuple[str, ...] = ()
    reason: str = ""
    max_abs_err: Optional[float] = None  # over the sample's floating outputs
    repro: str = ""                      # for a wrong result: a runnable script
    numel: int = 0
    notes: tuple[str, ...] = ()


# --- moving samples to the device ----------------------------------------------------------------

def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` with the same sizes, strides and storage offset, in a fresh storage."""
    storage_elements = t.untyped_storage().nbytes() // t.element_size()
    whole = torch.as_strided(t.detach(), (storage_elements,), (1,), 0)
    copy = whole.to(device=device, copy=True)
    return torch.as_strided(copy, t.size(), t.stride(), t.storage_offset())


def _on_device(tree, device: torch.device):
    def move(x):
        if isinstance(x, torch.Tensor):
            return to_device(x, device)
        if isinstance(x, torch.device):
            return device  # a factory op's device argument follows the sample
        return x

    return _pytree.tree_map(move, tree)


# --- the module ----------------------------------------------------------------------------------

def _returns_alias(op_name: str) -> bool:
    return any(r.alias_info is not None for r in resolve(op_name)._schema.returns)


# Int and bool results (sym_size, sym_numel, sym_is_contiguous, ...; symbolic where the program
# has dynamic dims) become 0-dim tensors of these dtypes: a program output must be a tensor kiln
# computes, and the value is then compared exactly. (The schema types of SymInt and SymBool
# returns: torch's Python binding names a SymInt return IntType.)
_SYMBOLIC_RESULT_DTYPES = {"IntType": torch.int64, "SymIntType": torch.int64,
                           "BoolType": torch.bool, "SymBoolType": torch.bool}


def _symbolic_result_dtype(op_name: str) -> Optional[torch.dtype]:
    returns = resolve(op_name)._schema.returns
    if len(returns) != 1:
        return None
    return _SYMBOLIC_RESULT_DTYPES.get(type(returns[0].type).__name__)


class SampleCalls(torch.nn.Module):
    """``forward(*tensors)`` calls the overload once per sample and returns every output leaf.

    Ops that return a view of an input (view, expand, permute, ...) have each tensor output passed
    through ``aten.clone``: a program of views alone has no compute op, and kiln (like TensorRT)
    builds no engine for it, so the clone makes kiln run the view. Ops that return a symbolic int
    or bool have it made a 0-dim tensor (``aten.full``) for the same reason."""

    def __init__(self, samples: list[Sample]):
        super().__init__()
        self.overloads = [resolve(s.op) for s in samples]
        self.materialize = [_returns_alias(s.op) for s in samples]
        self.symbolic = [_symbolic_result_dtype(s.op) for s in samples]
        self.templates = []
        for s in samples:
            leaves, spec = _pytree.tree_flatten((s.args, s.kwargs))
            slots = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
            constants = [None if isinstance(x, torch.Tensor) else x for x in leaves]
            self.templates.append((constants, slots, spec))

    @staticmethod
    def inputs_of(samples: list[Sample]) -> list[torch.Tensor]:
        return [t for s in samples for t in s.tensors()]

    def forward(self, *tensors):
        outputs = []
        position = 0
        for overload, materialize, symbolic, (constants, slots, spec) in zip(
                self.overloads, self.materialize, self.symbolic, self.templates):
            leaves = list(constants)
            for slot in slots:
                leaves[slot] = tensors[position]
                position += 1
            args, kwargs = _pytree.tree_unflatten(leaves, spec)
            result = overload(*args, **kwargs)
            if symbolic is not None:
                result = torch.ops.aten.full.default([], result, dtype=symbolic)
            for leaf in _pytree.tree_leaves(result):
                if materialize and isinstance(leaf, torch.Tensor):
                    leaf = torch.ops.aten.clone.default(leaf)
                outputs.append(leaf)
        return tuple(outputs)


# --- eager reference -----------------------------------------------------------------------------

@dataclasses.dataclass
class _Reference:
    sample: Sample           # on the device
    outputs: list            # eager's output leaves, on the device
    random: bool             # compare properties only
    inputs: list             # the sample's tensors on the device (strides kept)
    original: Sample         # as recorded, on the CPU (for the repro)
    # A dynamic sample's other calls (DynamicShapes.others): (tensors, eager outputs) on the device.
    others: list = dataclasses.field(default_factory=list)

    def fresh_inputs(self) -> list:
        """Copies of the inputs: export and mutating ops may write to the tensors they get."""
        return [to_device(t, t.device) for t in self.inputs]


def _eager(sample: Sample, device: torch.device) -> tuple[Optional[_Reference], str]:
    """Runs ``sample`` eagerly on the device: its reference outputs, or why it cannot be a test."""
    call = (sample.args, sample.kwargs)
    if sample.op in LAYOUT_DEPENDENT_OPS:
        # as_strided reads its input's storage, which an exported program's input does not
        # have beyond the tensor itself: such samples run on compact (dense, offset 0) inputs.
        call = _pytree.tree_map(
            lambda x: x.contiguous().clone() if isinstance(x, torch.Tensor) else x, call)
    moved = Sample(sample.op, sample.dtype, *_on_device(call, device), sample.origin,
                   sample.features, sample.derived, sample.dynamic)
    module = SampleCalls([moved])
    inputs = SampleCalls.inputs_of([moved])
    others = []
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            outputs = list(module(*[to_device(t, device) for t in inputs]))
            for other in sample.dynamic.others if sample.dynamic else ():
                tensors = [x for x in _pytree.tree_leaves(_on_device(other, device))
                           if isinstance(x, torch.Tensor)]
                others.append((tensors, list(module(*[to_device(t, device) for t in tensors]))))
            random = sample.op in UNINITIALIZED_OUTPUT_OPS
            if not random and torch.Tag.nondeterministic_seeded in resolve(sample.op).tags:
                torch.manual_seed(1)
                again = list(module(*[to_device(t, device) for t in inputs]))
                random = not all(compare_value(a, e).ok for a, e in zip(again, outputs))
    except Exception as error:  # noqa: BLE001 - eager rejects it here: not a test of kiln
        return None, f"eager: {type(error).__name__}: {_first_line(error)}"
    if not random and _has_non_contiguous(inputs) and sample.op not in LAYOUT_DEPENDENT_OPS:
        # Eager's strided kernels are themselves tested against its contiguous ones here: where
        # they disagree, eager has no single answer for kiln to match.
        try:
            with torch.no_grad():
                torch.manual_seed(0)
                dense = list(module(*[to_device(t, device).contiguous() for t in inputs]))
        except Exception:  # noqa: BLE001 - eager takes only the strided form (e.g. a view)
            dense = None
        if dense is not None and not all(compare_value(a, e).ok
                                         for a, e in zip(outputs, dense)):
            return None, ("eager: gives different results for these strided inputs and for "
                          "contiguous copies of them (an eager inconsistency, not a kiln test)")
    if any(isinstance(x, torch.Tensor) and (x.is_sparse or x.layout != torch.strided)
           for x in outputs):
        return None, "eager: a non-strided output"
    return _Reference(moved, outputs, random, inputs, sample, others), ""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


# --- compiling and running -----------------------------------------------------------------------

class _Skip(Exception):
    """The sample is no test of kiln (torch.export rejects it); the message says why."""


class _Declined(Exception):
    """kiln declined the program; the message is its reason."""


class _Failed(Exception):
    """kiln failed: an error while compiling or running that is not declining the op."""


class _EngineInputs:
    """Notes the layouts of the non-contiguous inputs the engines receive."""

    def __init__(self, module: torch.nn.Module):
        from kiln import KilnEngineModule

        self.engines = [m for m in module.modules() if isinstance(m, KilnEngineModule)]
        self.non_contiguous: set[tuple] = set()  # (sizes, strides) of strided engine inputs
        self._handles = [e.register_forward_pre_hook(self._hook) for e in self.engines]

    def _hook(self, module, inputs):
        for t in inputs:
            if isinstance(t, torch.Tensor) and t.numel() > 1 and not t.is_contiguous():
                self.non_contiguous.add((tuple(t.shape), tuple(t.stride())))

    def remove(self):
        for handle in self._handles:
            handle.remove()


def _torch_ops_outside_engines(module: torch.fx.GraphModule) -> list[str]:
    import operator

    return sorted({str(n.target) for n in module.graph.nodes
                   if n.op == "call_function" and n.target is not operator.getitem
                   and not _writes_back_an_input(n) and not _checks_sizes(n)})


# The program's own checks of its symbolic sizes: torch.export asserts the range of a size only
# the data determines (nonzero's row count u0: 0 <= u0 <= numel) on the output's size, after the
# engine that computed it. Integer arithmetic on sizes, no tensor op of the program.
_SIZE_OPS = frozenset({"aten.sym_size.int", "aten.sym_numel.default", "aten.sym_stride.int",
                       "aten._assert_scalar.default",
                       "aten.sym_constrain_range_for_size.default"})


def _checks_sizes(node: torch.fx.Node) -> bool:
    if getattr(node.target, "__module__", None) == "_operator":  # ge, le, mul on sizes
        return not any(isinstance(a, torch.fx.Node) and isinstance(a.meta.get("val"),
                                                                     torch.Tensor)
                       for a in node.all_input_nodes)
    return str(node.target) in _SIZE_OPS


def _writes_back_an_input(node: torch.fx.Node) -> bool:
    """``copy_(input, new_value)``: the program's signature (an input it mutates), which
    torch.export's module carries out after the engines, not an op of the program."""
    return (node.target is torch.ops.aten.copy_.default and bool(node.args)
            and isinstance(node.args[0], torch.fx.Node) and node.args[0].op == "placeholder")


def _compile_and_run(references: list[_Reference], device: torch.device):
    """Exports the references' module, compiles it with kiln and runs it. Returns the outputs
    per sample and the layouts of the strided inputs the engines received, or raises _Skip
    (export), _Declined (kiln declines) or _Failed (a kiln error)."""
    import kiln

    samples = [r.sample for r in references]
    module = SampleCalls(samples)
    dynamic_shapes, ranges = _dynamic_shapes(references)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(
                module, tuple(t for r in references for t in r.fresh_inputs()),
                dynamic_shapes=dynamic_shapes)
    except Exception as error:  # noqa: BLE001 - the sample, not kiln
        raise _Skip(f"export: {type(error).__name__}: {_first_line(error)}") from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kiln's "runs in PyTorch" warning is checked below
        try:
            inputs = [t for r in references for t in r.fresh_inputs()]
            inputs = [_kiln_input(kiln, t, dims) if dims else t
                      for t, dims in zip(inputs, ranges)]
            compiled = kiln.compile(program, inputs=inputs, device=str(device),
                                    min_block_size=1, require_full_compilation=True,
                                    pass_through_build_failures=True, disable_tf32=True)
        except kiln.UnsupportedError as error:
            raise _Declined(_unsupported_reason(error)) from error
        except Exception as error:  # noqa: BLE001 - any other failure to compile is kiln's
            raise _Failed(f"{_compile_stage(error)}: {type(error).__name__}: "
                          f"{_first_line(error)}") from error
    watcher = _EngineInputs(compiled)
    if not watcher.engines:
        raise _Declined("kiln built no engine (the lowered program has no op kiln computes); "
                        "it runs in PyTorch")
    leftover = _torch_ops_outside_engines(compiled)
    if leftover:
        raise _Failed(f"not fully compiled: {', '.join(leftover)} left to PyTorch despite "
                      "require_full_compilation=True")
    try:
        with torch.no_grad():
            torch.manual_seed(0)
            actual = list(compiled(*[t for r in references for t in r.fresh_inputs()]))
            # A dynamic sample runs alone (_run_references): its other sizes, same program.
            again = [list(compiled(*[to_device(t, t.device) for t in tensors]))
                     for tensors, _ in (references[0].others if len(references) == 1 else ())]
    except Exception as error:  # noqa: BLE001 - a failure to run is kiln's
        raise _Failed(f"run: {type(error).__name__}: {_first_line(error)}") from error
    finally:
        watcher.remove()
    per_sample = []
    position = 0
    for r in references:
        per_sample.append(actual[position:position + len(r.outputs)])
        position += len(r.outputs)
    if position != len(actual):
        raise _Failed(f"compiled module returned {len(actual)} outputs, eager {position}")
    if again:
        per_sample[0] = [per_sample[0], *again]
    return per_sample, watcher.non_contiguous


def _dynamic_shapes(references: list[_Reference]) -> tuple[Optional[tuple], list]:
    """torch.export's ``dynamic_shapes`` for SampleCalls' ``*tensors`` (None where every sample
    is static), and per input its {dim: (min, max)} (None for a static input)."""
    ranges = []
    for r in references:
        dynamic = r.sample.dynamic
        ranges += [dynamic.ranges.get(i) if dynamic else None for i in range(len(r.inputs))]
    if not any(ranges):
        return None, ranges
    specs = tuple({d: torch.export.Dim(f"t{i}_d{d}", min=lo, max=hi)
                   for d, (lo, hi) in dims.items()} if dims else None
                  for i, dims in enumerate(ranges))
    return (specs,), ranges


def _kiln_input(kiln, t: torch.Tensor, dims: dict):
    """The kiln.Input of a dynamic input: its dynamic dims over their range, tuned for ``t``."""
    low = [dims[d][0] if d in dims else n for d, n in enumerate(t.shape)]
    high = [dims[d][1] if d in dims else n for d, n in enumerate(t.shape)]
    return kiln.Input(min_shape=low, opt_shape=list(t.shape), max_shape=high, dtype=t.dtype)


def _compile_stage(error: BaseException) -> str:
    """Where in kiln.compile an exception came from: kiln's own code, or torch's machinery that
    kiln.compile runs (the decompositions of its lowering, the program's serialization)."""
    import traceback

    files = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
    if any(os.path.join("torch", "_export", "serde") in f for f in files):
        return "compile (serializing the program: torch.export.save)"
    if any(f.endswith(os.path.join("kiln", "_lowering.py")) for f in files):
        return "compile (lowering: torch's run_decompositions)"
    return "compile"


def _has_non_contiguous(tensors: list) -> bool:
    return any(t.numel() > 1 and not t.is_contiguous() for t in tensors)


def _unsupported_reason(error: Exception) -> str:
    """kiln's reason, without what depends on the batch: its message is a header line, then
    "op (N nodes: names): reason" per unsupported op."""
    import re

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    listing = r" \(\d+ nodes?: [^()]*(\(\d+ more\))?\)"  # " (7 nodes: a, b, ... (2 more))"
    details = [re.sub(listing, "", line) for line in (lines[1:] or lines)]
    return "; ".join(details)[:500]


# --- the entry point -----------------------------------------------------------------------------

def run_samples(samples: list[Sample], device: str = "cpu") -> list[SampleOutcome]:
    """Runs one (op, dtype)'s samples through kiln on ``device``; one outcome per sample."""
    if not samples:
        return []
    return run_groups({samples[0].op: samples}, device)[samples[0].op]


def run_groups(groups: dict[str, list[Sample]], device: str = "cpu") -> dict[str, list]:
    """Runs the samples of several ops (one dtype) as one program; where it does not pass
    cleanly, each op, then each sample, is retried alone. Returns each op's outcomes."""
    device = torch.device(device)
    outcomes: dict[tuple[str, int], SampleOutcome] = {}
    references = []
    with _full_fp32_precision():
        for op, op_samples in groups.items():
            for index, sample in enumerate(op_samples):
                reference, why = _eager(sample, device)
                if reference is None:
                    outcomes[(op, index)] = _outcome(sample, "skipped", why)
                else:
                    references.append(((op, index), reference))
        for key, outcome in _run_references(references, device):
            outcomes[key] = outcome
    return {op: [outcomes[(op, i)] for i in range(len(op_samples))]
            for op, op_samples in groups.items()}


@contextlib.contextmanager
def _full_fp32_precision():
    """fp32 is compared in full fp32 on both sides: kiln's TF32 default (and cuDNN's in eager)
    rounds GEMM and convolution inputs to 10 mantissa bits, beyond the fp32 tolerance; that
    rounding is a precision setting, not what the conformance of an op is about. (torch's test
    utilities freeze cuDNN's flags outside its ``flags`` context.)"""
    cudnn = torch.backends.cudnn
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                         deterministic=cudnn.deterministic, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def _claimed_by_kiln(op: str) -> bool:
    from kiln import _C

    return op in set(_C.supported_op_names())


def _run_references(references: list, device: torch.device) -> list:
    """(key, _Reference) pairs -> (key, SampleOutcome) pairs."""
    if not references:
        return []
    if len(references) > 1 and any(r.sample.dynamic for _, r in references):
        # A dynamic sample's program also runs at its other sizes: one sample to a program.
        results = []
        for item in references:
            results += _run_references([item], device)
        return results
    try:
        actual, engine_saw = _compile_and_run([r for _, r in references], device)
    except (_Skip, _Declined, _Failed) as error:
        ops_in_batch = list(dict.fromkeys(key[0] for key, _ in references))
        if len(ops_in_batch) > 1:
            results = []
            for op in ops_in_batch:
                results += _run_references([item for item in references if item[0][0] == op],
                                           device)
            return results
        alone_says_more = len(references) > 1 and (
            not isinstance(error, _Declined) or _claimed_by_kiln(ops_in_batch[0]))
        if alone_says_more:
            results = []
            for item in references:
                results += _run_references([item], device)
            return results
        status = {_Skip: "skipped", _Declined: "unsupported", _Failed: "fail"}[type(error)]
        return [(key, _outcome(r.sample, status, str(error), reference=r))
                for key, r in references]
    results = []
    for (key, reference), outputs in zip(references, actual):
        notes = []
        strided = [(tuple(t.shape), tuple(t.stride())) for t in reference.inputs
                   if t.numel() > 1 and not t.is_contiguous()]
        if strided:
            notes.append("engine module received non-contiguous inputs"
                         if any(layout in engine_saw for layout in strided)
                         else "non-contiguous inputs reached the engine module contiguous")
        results.append((key, _judge(reference, outputs, notes)))
    return results


def _wider_eager(reference: _Reference, wide: torch.dtype) -> Optional[list]:
    """Eager on the sample with its floating inputs (and dtype arguments) of the sample's dtype
    widened to ``wide``, the outputs rounded back to the dtypes eager gave: the answer of
    computing in the wider type and rounding once. None where that does not run."""
    dtype = DTYPES[reference.sample.dtype]

    def widen(x):
        if isinstance(x, torch.Tensor) and x.dtype == dtype:
            return x.to(wide)
        return wide if x is dtype else x

    args, kwargs = _pytree.tree_map(widen, (reference.sample.args, reference.sample.kwargs))
    try:
        with torch.no_grad():
            outputs = _pytree.tree_leaves(resolve(reference.sample.op)(*args, **kwargs))
    except Exception:  # noqa: BLE001
        return None
    if len(outputs) != len(reference.outputs):
        return None
    rounded = []
    for w, e in zip(outputs, reference.outputs):
        if isinstance(w, torch.Tensor) and isinstance(e, torch.Tensor) and w.dtype != e.dtype:
            w = w.to(e.dtype)
        rounded.append(w)
    return rounded


def _judge(reference: _Reference, actual: list, notes: list) -> SampleOutcome:
    if reference.others:
        # A dynamic sample: its outputs at each size, which must all match.
        outcomes = [_judge_one(reference, outputs, expected, notes)
                    for outputs, expected in zip(actual, [reference.outputs] +
                                                 [e for _, e in reference.others])]
        wrong = [o for o in outcomes if o.status != "pass"]
        outcome = wrong[0] if wrong else outcomes[0]
        errors = [o.max_abs_err for o in outcomes if o.max_abs_err is not None]
        outcome.max_abs_err = max(errors) if errors else None
        return outcome
    return _judge_one(reference, actual, reference.outputs, notes)


def _judge_one(reference: _Reference, actual: list, expected: list,
               notes: list) -> SampleOutcome:
    sample = reference.sample
    if reference.random:
        comparison = check_properties(sample, actual, expected)
        notes = notes + ["random or uninitialized output: shapes, dtypes and properties compared"]
    else:
        comparison = compare_outputs(actual, expected)
        tied = compare_tied_indices(sample, actual, expected) if not comparison.ok else None
        if tied is not None and tied.ok:
            notes = notes + [f"indices of equal values in another order than eager's, which "
                             f"{sample.op} leaves open ({comparison.reason})"]
            comparison = tied
        for wide in (WIDER_REFERENCES.get(DTYPES[sample.dtype], ())
                     if not comparison.ok and expected is reference.outputs else ()):
            wider = _wider_eager(reference, wide)
            again = compare_outputs(actual, wider) if wider is not None else None
            if again is not None and again.ok:
                notes = notes + [f"matches eager computed in {str(wide).replace('torch.', '')} "
                                 f"and rounded to {sample.dtype}, not eager {sample.dtype} "
                                 f"({comparison.reason})"]
                comparison = again
                break
    status = "pass" if comparison.ok else "fail"
    outcome = _outcome(sample, status, comparison.reason, reference=reference)
    outcome.max_abs_err = comparison.max_abs_err
    outcome.notes = tuple(notes)
    return outcome


def _outcome(sample: Sample, status: str, reason: str,
             reference: Optional[_Reference] = None) -> SampleOutcome:
    outcome = SampleOutcome(status, sample.describe(), sample.origin, tuple(sample.features),
                            reason, numel=sample.numel())
    if status == "fail":
        original = reference.original if reference is not None else sample
        outcome.repro = repro_script(original, str(sample.tensors()[0].device)
                                     if sample.tensors() else "cpu")
    return outcome


_NOTES_KEPT = 8         # distinct notes kept per (op, dtype) in a summary
_NOT_PASSED_KEPT = 16   # non-passing samples listed per (op, dtype) in a summary


# --- aggregating ---------------------------------------------------------------------------------

def summarize(outcomes: list[SampleOutcome]) -> dict:
    """One (op, dtype)'s verdict from its samples: fail if any sample is wrong, unsupported if
    kiln declines every sample it was given, partial if it declines some and passes the rest,
    pass if every sample that ran passed, skipped if none could run."""
    statuses = [o.status for o in outcomes]
    ran = [o for o in outcomes if o.status != "skipped"]
    if not outcomes:
        status = "no_samples"
    elif "fail" in statuses:
        status = "fail"
    elif "unsupported" in statuses:
        status = "partial" if "pass" in statuses else "unsupported"
    elif "pass" in statuses:
        status = "pass"
    else:
        status = "skipped"
    failing = [o for o in outcomes if o.status == "fail"]
    declined = [o for o in outcomes if o.status == "unsupported"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    errors = [o.max_abs_err for o in (failing or ran) if o.max_abs_err is not None]
    if failing:
        smallest = min(failing, key=lambda o: o.numel)
        reason, repro = f"{smallest.reason} [{smallest.sample}]", smallest.repro
    elif declined:
        reason, repro = declined[0].reason, ""
    elif status == "skipped":
        reason, repro = skipped[0].reason, ""
    else:
        reason, repro = "", ""
    return {
        "status": status,
        "samples": len(outcomes),
        "passed": statuses.count("pass"),
        "failed": len(failing),
        "unsupported": len(declined),
        "skipped": len(skipped),
        "max_abs_err": max(errors) if errors else None,
        "reason": reason,
        "repro": repro,
        "features": sorted({f for o in outcomes if o.status == "pass" for f in o.features}),
        "notes": sorted({n for o in outcomes for n in o.notes})[:_NOTES_KEPT],
        # The samples that did not pass (a results file stays small enough to commit).
        "not_passed": [{"status": o.status, "sample": o.sample, "origin": o.origin,
                        "reason": o.reason} for o in outcomes if o.status != "pass"
                       ][:_NOT_PASSED_KEPT],
    }
