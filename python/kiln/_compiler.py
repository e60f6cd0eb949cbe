"""kiln.compile and friends: the seed's compiler API (torch_tensorrt.dynamo._compiler) on kiln.

    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x])          # a torch.fx.GraphModule
    y = compiled(x)

The pipeline: settings are validated (kiln._settings); the program is lowered with kiln's
decomposition table (kiln._lowering) and handed to the C++ core as a torch.export archive in
memory; C++ decides support and partitions; the plan becomes an FX module (kiln._fx_split) whose
``_run_on_acc_N`` submodules are replaced by engines, built per segment (or taken from the engine
cache). See docs/compiler.md.
"""
from __future__ import annotations

import inspect
import io
import logging
import os
import time
import warnings
from typing import Any, Collection, Optional, Sequence

import torch

from kiln import _C, _defaults, _fx_split, _lowering
from kiln._dryrun import emit_dryrun_report, format_dryrun_report
from kiln._engine_cache import BaseEngineCache
from kiln._engine_module import KilnEngineModule
from kiln._dtype_support import TorchOnlyValues
from kiln._input import Input, TorchOnlyInput
from kiln._runnable_decompositions import target_name
from kiln._settings import CompilationSettings, resolve_settings
from kiln.errors import (InvalidArgumentError, KilnError, LoweringError, UnsupportedError,
                         full_compilation_message, unsupported_ops_message)

logger = logging.getLogger("kiln")


def compile(
    exported_program: "torch.export.ExportedProgram",
    inputs: Optional[Sequence[Any]] = None,
    *,
    arg_inputs: Optional[Sequence[Any]] = None,
    kwarg_inputs: Optional[dict] = None,
    device=_defaults.DEVICE,
    disable_tf32: bool = _defaults.DISABLE_TF32,
    assume_dynamic_shape_support: bool = _defaults.ASSUME_DYNAMIC_SHAPE_SUPPORT,
    sparse_weights: bool = _defaults.SPARSE_WEIGHTS,
    enabled_precisions=_defaults.ENABLED_PRECISIONS,
    engine_capability=_defaults.ENGINE_CAPABILITY,
    num_avg_timing_iters: int = _defaults.NUM_AVG_TIMING_ITERS,
    workspace_size: int = _defaults.WORKSPACE_SIZE,
    dla_sram_size: int = _defaults.DLA_SRAM_SIZE,
    dla_local_dram_size: int = _defaults.DLA_LOCAL_DRAM_SIZE,
    dla_global_dram_size: int = _defaults.DLA_GLOBAL_DRAM_SIZE,
    truncate_double: bool = _defaults.TRUNCATE_DOUBLE,
    require_full_compilation: bool = _defaults.REQUIRE_FULL_COMPILATION,
    min_block_size: int = _defaults.MIN_BLOCK_SIZE,
    torch_executed_ops: Optional[Collection[Any]] = None,
    torch_executed_modules: Optional[list] = None,
    pass_through_build_failures: bool = _defaults.PASS_THROUGH_BUILD_FAILURES,
    max_aux_streams: Optional[int] = _defaults.MAX_AUX_STREAMS,
    version_compatible: bool = _defaults.VERSION_COMPATIBLE,
    optimization_level: Optional[int] = _defaults.OPTIMIZATION_LEVEL,
    use_python_runtime: bool = _defaults.USE_PYTHON_RUNTIME,
    use_fast_partitioner: bool = _defaults.USE_FAST_PARTITIONER,
    enable_experimental_decompositions: bool = _defaults.ENABLE_EXPERIMENTAL_DECOMPOSITIONS,
    dryrun=_defaults.DRYRUN,
    hardware_compatible: bool = _defaults.HARDWARE_COMPATIBLE,
    timing_cache_path: str = _defaults.TIMING_CACHE_PATH,
    lazy_engine_init: bool = _defaults.LAZY_ENGINE_INIT,
    cache_built_engines: bool = _defaults.CACHE_BUILT_ENGINES,
    reuse_cached_engines: bool = _defaults.REUSE_CACHED_ENGINES,
    engine_cache_dir: str = _defaults.ENGINE_CACHE_DIR,
    engine_cache_size: int = _defaults.ENGINE_CACHE_SIZE,
    custom_engine_cache: Optional[BaseEngineCache] = _defaults.CUSTOM_ENGINE_CACHE,
    use_explicit_typing: bool = _defaults.USE_EXPLICIT_TYPING,
    use_fp32_acc: bool = _defaults.USE_FP32_ACC,
    refit_identical_engine_weights: bool = _defaults.REFIT_IDENTICAL_ENGINE_WEIGHTS,
    strip_engine_weights: bool = _defaults.STRIP_ENGINE_WEIGHTS,
    immutable_weights: bool = _defaults.IMMUTABLE_WEIGHTS,
    enable_weight_streaming: bool = _defaults.ENABLE_WEIGHT_STREAMING,
    tiling_optimization_level: str = _defaults.TILING_OPTIMIZATION_LEVEL,
    l2_limit_for_tiling: int = _defaults.L2_LIMIT_FOR_TILING,
    offload_module_to_cpu: bool = _defaults.OFFLOAD_MODULE_TO_CPU,
    use_distributed_mode_trace: bool = _defaults.USE_DISTRIBUTED_MODE_TRACE,
    target: Optional[str] = _defaults.TARGET,
    **kwargs: Any,
) -> torch.fx.GraphModule:
    """Compiles an ``ExportedProgram`` into a ``torch.fx.GraphModule`` whose supported parts run
    as kiln engines (``_run_on_acc_N`` submodules) and the rest in PyTorch.

    ``inputs`` / ``arg_inputs`` (and ``kwarg_inputs``) give each input's shape (static, or
    ``kiln.Input(min_shape=, opt_shape=, max_shape=)`` for a dimension exported as dynamic),
    dtype and format, as ``kiln.Input`` objects or example tensors. Every other keyword is a
    setting with the meaning, default and validation of ``torch_tensorrt.dynamo.compile``; the
    settings reference (docs/compiler.md) says what each does in kiln. A setting that cannot mean
    anything for kiln is accepted at its default and rejected when changed. ``target`` is kiln's
    own: the GPU arch to build for ("sm_90"; see :func:`cross_compile`).
    """
    settings, arg_specs, kwarg_specs, cache = _resolve(locals(), kwargs)
    started = time.perf_counter()
    program_key = _program_key(exported_program, settings, arg_specs, kwarg_specs, cache)
    if program_key is not None and settings.reuse_cached_engines:
        module = _program_from_cache(cache, program_key, arg_specs, kwarg_specs, started)
        if module is not None:
            return module
    lowered = _lowering.lower(exported_program, settings.enable_experimental_decompositions,
                               _backend_and_arch(settings)[0])
    stats = {"lower_s": time.perf_counter() - started}
    module = _compile_lowered(lowered, arg_specs, kwarg_specs, settings, cache, stats)
    if program_key is not None and settings.cache_built_engines:
        _program_to_cache(cache, program_key, module)
    return module


# --- the program-level cache ----------------------------------------------------------------------
# Next to each engine, the cache keeps the whole compiled module (in kiln.save's form) under a key
# of the exported program *before* lowering, so that a hit skips torch's decompositions and the
# serialization of the program: the dominant costs of a compile whose engines are all cached.

_USE_PROGRAM_CACHE = True


def _canonical(value) -> str:
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_canonical(v) for v in value) + "]"
    return repr(value)


def _program_key(ep, settings: CompilationSettings, arg_specs, kwarg_specs,
                 cache: Optional[BaseEngineCache]) -> Optional[str]:
    """The program-level key, or None where that cache does not apply (no cache, a dry run,
    refittable or stripped engines, whose weights are not part of the entry's identity)."""
    if (cache is None or not _USE_PROGRAM_CACHE or settings.dryrun
            or not settings.immutable_weights or settings.strip_engine_weights):
        return None
    import dataclasses

    from torch.utils import _pytree

    skip = {"custom_engine_cache", "cache_built_engines", "reuse_cached_engines",
            "engine_cache_dir", "engine_cache_size", "lazy_engine_init", "timing_cache_path",
            "dryrun"}
    parts = ["kiln-program-key-v1", _C.__version__, torch.__version__]
    parts += [f"{f.name}={_canonical(getattr(settings, f.name))}"
              for f in dataclasses.fields(settings) if f.name not in skip]
    specs, _ = _pytree.tree_flatten((tuple(arg_specs), dict(kwarg_specs)),
                                    is_leaf=lambda x: isinstance(x, Input))
    parts += [_canonical(sorted(s.to_spec().items())) if isinstance(s, Input) else repr(s)
              for s in specs]
    parts += [str(ep.graph_signature), str(ep.range_constraints), str(ep.call_spec)]
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        meta = (f"{tuple(val.shape)} {val.dtype}" if isinstance(val, torch.Tensor)
                else _canonical(val) if isinstance(val, (list, tuple)) else repr(type(val)))
        parts.append(f"{node.format_node()} :: {meta}")
    weights = dict(ep.state_dict)
    weights.update(getattr(ep, "constants", {}) or {})
    for name in sorted(weights):
        tensor = weights[name]
        if not isinstance(tensor, torch.Tensor):
            parts.append(f"{name}: {type(tensor).__name__}")
            continue
        data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        parts.append(f"{name}: {tensor.dtype} {tuple(tensor.shape)} {_C.digest(data)}")
    return _C.digest("\n".join(parts).encode())


def _program_from_cache(cache: BaseEngineCache, key: str, arg_specs, kwarg_specs,
                        started: float) -> Optional[torch.nn.Module]:
    blob = cache.check(key)
    if blob is None:
        return None
    try:
        module = torch.export.load(io.BytesIO(blob)).module()
    except Exception as error:  # noqa: BLE001 - any failure to restore is a miss
        logger.warning("kiln: cached compiled program %s is unusable (%s); removing it and "
                       "compiling again", key, error)
        cache.remove(key)
        return None
    module._kiln_arg_inputs = list(arg_specs)
    module._kiln_kwarg_inputs = dict(kwarg_specs)
    module._kiln_stats = {"program_cache_s": time.perf_counter() - started, "engines": {},
                          "total_s": time.perf_counter() - started}
    logger.info("kiln: the compiled program from the cache (%s) in %.2f s", key,
                time.perf_counter() - started)
    return module


def _program_to_cache(cache: BaseEngineCache, key: str, module: torch.nn.Module) -> None:
    if not any(isinstance(m, KilnEngineModule) for m in module.modules()):
        return  # nothing was built: compiling again costs what loading would
    try:
        buffer = io.BytesIO()
        torch.export.save(_export_compiled(module, None, None, None, None), buffer)
        cache.insert(key, buffer.getvalue())
    except Exception as error:  # noqa: BLE001 - the program-level entry is an optimization
        logger.warning("kiln: could not cache the compiled program (%s); engines stay cached",
                       error)


_SETTING_NAMES = [name for name, p in inspect.signature(compile).parameters.items()
                  if p.kind == inspect.Parameter.KEYWORD_ONLY
                  and name not in ("arg_inputs", "kwarg_inputs")]


def _resolve(given: dict, extra: dict, *, stacklevel: int = 4):
    settings_kwargs = {name: given[name] for name in _SETTING_NAMES if name in given}
    return resolve_settings(settings_kwargs, extra, inputs=given.get("inputs"),
                            arg_inputs=given.get("arg_inputs"),
                            kwarg_inputs=given.get("kwarg_inputs"), stacklevel=stacklevel)


def _split_settings(settings_and_inputs: dict) -> tuple[dict, dict]:
    """Separates compile()'s keywords given through **kwargs into settings and the rest."""
    named = {k: v for k, v in settings_and_inputs.items() if k in _SETTING_NAMES}
    extra = {k: v for k, v in settings_and_inputs.items() if k not in _SETTING_NAMES}
    return named, extra


def _settings_from_kwargs(inputs, arg_inputs, kwarg_inputs, kwargs: dict):
    named, extra = _split_settings(kwargs)
    signature = inspect.signature(compile).parameters
    values = {name: signature[name].default for name in _SETTING_NAMES}
    values.update(named)
    values.update(inputs=inputs, arg_inputs=arg_inputs, kwarg_inputs=kwarg_inputs)
    return _resolve(values, extra, stacklevel=5)


def convert_exported_program_to_serialized_engine(
    exported_program: "torch.export.ExportedProgram",
    inputs: Optional[Sequence[Any]] = None,
    *,
    arg_inputs: Optional[Sequence[Any]] = None,
    kwarg_inputs: Optional[dict] = None,
    **kwargs: Any,
) -> bytes:
    """Builds the whole program as one engine and returns its bytes (a ``.engine`` file's
    contents, runnable with ``kiln run`` or the C++ runtime). Takes compile()'s settings. Raises
    :class:`kiln.UnsupportedError` listing every op kiln cannot run (with counts and nodes)."""
    settings, arg_specs, kwarg_specs, _ = _settings_from_kwargs(inputs, arg_inputs, kwarg_inputs,
                                                                kwargs)
    lowered = _lowering.lower(exported_program, settings.enable_experimental_decompositions,
                               _backend_and_arch(settings)[0])
    torch_only = TorchOnlyValues(lowered)
    if torch_only:
        raise UnsupportedError(
            "the whole program cannot be one engine: " + ", ".join(
                f"node '{name}' {reason}" for name, reason in torch_only.reasons.items()))
    specs = _flat_specs(lowered, arg_specs, kwarg_specs)
    started = time.perf_counter()
    engine = _C.build_program_engine(_archive_bytes(lowered), _build_settings(settings), specs,
                                     "program")
    logger.info("kiln: built the program's engine (%.1f MB) in %.2f s", len(engine) / 1e6,
                time.perf_counter() - started)
    return engine


def cross_compile(exported_program: "torch.export.ExportedProgram", target: str = "sm_90",
                  inputs: Optional[Sequence[Any]] = None, **kwargs: Any) -> torch.fx.GraphModule:
    """Compiles for another machine: engines for ``target`` (a GPU arch like "sm_90") are built
    here, with no GPU needed, and loaded only where they run (save the result with
    :func:`kiln.save`). Takes compile()'s keywords. kiln engines are OS-neutral, so this is also
    the answer to the seed's ``cross_compile_for_windows``."""
    kwargs.setdefault("device", "cuda")
    kwargs["lazy_engine_init"] = True
    named, extra = _split_settings(kwargs)
    module = compile(exported_program, inputs, target=target, **named, **extra)
    return module


def cross_compile_for_windows(exported_program, inputs=None, **kwargs) -> torch.fx.GraphModule:
    """The seed's name: kiln engines do not depend on the OS, so this is :func:`cross_compile`
    for the device's arch (``target`` keyword, default sm_90)."""
    target = kwargs.pop("target", "sm_90")
    return cross_compile(exported_program, target, inputs, **kwargs)


def compile_module(gm: torch.fx.GraphModule, sample_arg_inputs: Sequence[Any],
                   sample_kwarg_inputs: Optional[dict] = None,
                   settings: Optional[CompilationSettings] = None,
                   engine_cache: Optional[BaseEngineCache] = None) -> torch.fx.GraphModule:
    """Partitions and builds an FX module that is already lowered (the second half of compile()).

    ``gm`` is exported again (with the sample inputs' shapes and dynamic ranges) so that the C++
    core sees a torch.export program; pass an ``ExportedProgram``'s ``.module()``.
    """
    from kiln._input import prepare_inputs

    settings = settings if settings is not None else CompilationSettings()
    arg_specs = prepare_inputs(list(sample_arg_inputs))
    kwarg_specs = prepare_inputs(dict(sample_kwarg_inputs or {}))
    args, kwargs, dynamic_shapes = _examples(arg_specs, kwarg_specs)
    ep = torch.export.export(gm, tuple(args), kwargs, dynamic_shapes=dynamic_shapes, strict=False)
    ep = _lowering.lower(ep, settings.enable_experimental_decompositions,
                        _backend_and_arch(settings)[0])
    return _compile_lowered(ep, arg_specs, kwarg_specs, settings, engine_cache)


# --- the pipeline -------------------------------------------------------------------------------

def _archive_bytes(ep) -> bytes:
    """The program as a torch.export archive in memory: the C++ core reads programs only as PT2
    archives, without libtorch (docs: DESIGN.md, decision 1), so compiling serializes."""
    buffer = io.BytesIO()
    try:
        torch.export.save(_with_plain_output_tuples(ep), buffer)
    except Exception as error:  # noqa: BLE001 - torch's failure, reported as kiln's
        raise _serialization_error(ep, error) from error
    return buffer.getvalue()


def _plain_tuples(value: Any) -> Any:
    """``value`` with every named tuple (``torch.return_types.sort`` and the like) a plain tuple."""
    if isinstance(value, tuple):
        return tuple(_plain_tuples(v) for v in value)
    if isinstance(value, list):
        return [_plain_tuples(v) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _plain_tuples(v)) for k, v in value.items())
    return value


def _with_plain_output_tuples(ep):
    """``ep`` for the C++ core's archive: torch.export.save cannot write an output spec holding
    torch's named tuples (what ``x.sort()``, ``x.max(dim)`` or ``x.topk(k)`` return: "No
    registered serialization name"), and the core reads only the graph's outputs, in order. The
    program kiln.compile returns keeps the named tuples (it is built from ``ep`` itself)."""
    import copy
    import dataclasses

    from torch.utils import _pytree

    entries = list(ep.module_call_graph)
    if not entries or entries[0].signature is None:
        return ep
    spec = entries[0].signature.out_spec
    plain = _pytree.tree_structure(
        _plain_tuples(_pytree.tree_unflatten(list(range(spec.num_leaves)), spec)))
    if plain == spec:
        return ep
    entries[0] = dataclasses.replace(
        entries[0], signature=dataclasses.replace(entries[0].signature, out_spec=plain))
    archived = copy.copy(ep)
    archived._module_call_graph = entries
    return archived


def _serialization_error(ep, error: BaseException) -> KilnError:
    """kiln's error for a program torch.export.save cannot write: an UnsupportedError naming the
    nodes whose outputs it cannot write (symbolic bools returned by the program), else a
    LoweringError."""
    from torch.utils import _pytree

    first = (str(error).strip().splitlines() or [""])[0][:300]
    what = (f"torch.export.save cannot write the lowered program, and kiln's C++ core reads "
            f"programs as torch.export archives ({type(error).__name__}: {first})")
    culprits: dict[str, list[str]] = {}
    for value in _pytree.tree_leaves(ep.graph.output_node().args):
        if isinstance(value, torch.fx.Node) and isinstance(value.meta.get("val"), torch.SymBool):
            culprits.setdefault(target_name(value.target), []).append(value.name)
    if not culprits:
        return LoweringError(f"{what}; see the chained exception")
    reason = ("returns a symbolic bool as a program output, which torch.export.save cannot "
              "write (return a tensor instead: no .item() on a bool tensor)")
    return UnsupportedError(unsupported_ops_message(
        f"{what}; the cause:", [{"op": op, "nodes": nodes, "reason": reason}
                                 for op, nodes in culprits.items()]))


def _gpu_index(settings: CompilationSettings) -> int:
    """The GPU ``device`` names: kiln.Device resolves "cuda" to torch's current device."""
    return getattr(settings.device, "gpu_id", 0) or 0


def _backend_and_arch(settings: CompilationSettings) -> tuple[str, str]:
    device = settings.device
    device_type = getattr(device, "device_type", None)
    type_name = str(getattr(device_type, "name", device_type) or "").lower()
    is_cuda = "cuda" in str(device).lower() or type_name in ("gpu", "cuda")
    if settings.target:
        return ("cuda" if settings.target.startswith(("sm_", "compute_")) else "cpu",
                settings.target if settings.target.startswith(("sm_", "compute_")) else "")
    if is_cuda:
        major, minor = torch.cuda.get_device_capability(_gpu_index(settings))
        return "cuda", f"sm_{major}{minor}"
    return "cpu", ""


_PRECISION_NAMES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}


def _build_settings(settings: CompilationSettings) -> dict:
    backend, arch = _backend_and_arch(settings)
    precisions = sorted(_PRECISION_NAMES.get(getattr(p, "name", str(p)), str(p))
                        for p in settings.enabled_precisions)
    refittable = not settings.immutable_weights
    return {
        "backend": backend,
        "arch": arch,
        "precisions": precisions,
        "use_explicit_typing": settings.use_explicit_typing,
        "use_fp32_acc": settings.use_fp32_acc,
        "disable_tf32": settings.disable_tf32,
        "hardware_compatible": settings.hardware_compatible,
        "truncate_double": settings.truncate_double,
        "refittable": refittable,
        "strip_weights": settings.strip_engine_weights,
        "optimization_level": -1 if settings.optimization_level is None
        else settings.optimization_level,
        "num_avg_timing_iters": settings.num_avg_timing_iters,
        "workspace_size": settings.workspace_size,
    }


def _partition_settings(settings: CompilationSettings, ep) -> dict:
    return {
        "use_fast_partitioner": settings.use_fast_partitioner,
        "min_block_size": settings.min_block_size,
        "torch_executed_ops": sorted(settings.torch_executed_ops),
        "torch_executed_nodes": _nodes_of_modules(ep, settings.torch_executed_modules or []),
        "require_full_compilation": settings.require_full_compilation,
        "assume_dynamic_shape_support": settings.assume_dynamic_shape_support,
        # Support is the target backend's: a node the CUDA backend declines runs in PyTorch.
        "backend": _backend_and_arch(settings)[0],
    }


def _nodes_of_modules(ep, modules: Sequence[str]) -> list[str]:
    """The call nodes that come from the named modules: by path ("layer1.0") or by class
    ("torchvision.models.resnet.Bottleneck" or "Bottleneck")."""
    if not modules:
        return []
    wanted = set(modules)
    found: set[str] = set()
    nodes = []
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            type_name = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
            names = {path, type_name, type_name.rsplit(".", 1)[-1]}
            matched = [m for m in wanted if m in names or path.startswith(m + ".")]
            if matched:
                found.update(matched)
                nodes.append(node.name)
                break
    missing = wanted - found
    if missing:
        raise InvalidArgumentError(
            f"torch_executed_modules: no node of the program comes from {sorted(missing)} "
            "(give a module path like 'layer1.0' or a class name like 'Bottleneck')")
    return nodes


def _flat_specs(ep, arg_specs: Sequence[Input], kwarg_specs: dict) -> list:
    """One spec dict per user input of the program, in its order (or [] to use its shapes)."""
    from torch.utils import _pytree

    in_spec = ep.call_spec.in_spec
    if kwarg_specs and in_spec is not None and in_spec.num_children == 2:
        order = in_spec.children_specs[1].context or []
        kwarg_specs = {k: kwarg_specs[k] for k in order if k in kwarg_specs}
    leaves, _ = _pytree.tree_flatten((tuple(arg_specs), dict(kwarg_specs)),
                                     is_leaf=lambda x: isinstance(x, Input))
    leaves = [x for x in leaves if x is not None]
    user_inputs = [s for s in ep.graph_signature.input_specs
                   if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]
    if not leaves:
        return []
    if len(leaves) != len(user_inputs):
        raise InvalidArgumentError(
            f"expected {len(user_inputs)} input specs (one per input of the exported program: "
            f"{[s.arg.name for s in user_inputs]}), found {len(leaves)}")
    specs = []
    for leaf in leaves:
        if not isinstance(leaf, (Input, TorchOnlyInput)):
            raise InvalidArgumentError(f"expected kiln.Input or a tensor per input, found "
                                       f"{type(leaf).__name__}")
        specs.append(leaf.to_spec())
    return specs


def _compile_lowered(ep, arg_specs, kwarg_specs, settings: CompilationSettings,
                     cache: Optional[BaseEngineCache],
                     stats: Optional[dict] = None) -> torch.fx.GraphModule:
    """Partitions a lowered program and builds its engines. The returned module's
    ``_kiln_stats`` says where the time went (seconds per phase; per engine: built or cached)."""
    stats = dict(stats or {})
    started = clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stats[name] = now - clock
        clock = now

    gm = ep.module()
    phase("module_s")
    torch_only = TorchOnlyValues(ep)
    try:
        with torch_only.stand_ins(ep):
            archive = _archive_bytes(ep)
    except UnsupportedError as error:
        if settings.require_full_compilation:
            raise
        warnings.warn(f"kiln: {error}; returning the program unchanged to run in PyTorch",
                      stacklevel=3)
        return gm
    phase("serialize_s")
    # kiln's shape inference would disagree with the program at nodes that read stand-ins; each
    # engine's segment, which holds none, is checked again when it is built.
    # The split module (ep.module()'s graph) copies mutated inputs back and returns None outputs
    # itself; the engines compute the values.
    program = _C.load_program_bytes(archive, check_inference=not torch_only,
                                    torch_keeps_signature=True)
    phase("read_s")
    partition_settings = _partition_settings(settings, ep)
    if torch_only:
        # The core would name these nodes' reason "torch_executed_nodes": the check is made
        # here, on the plan explain() corrects.
        partition_settings["torch_executed_nodes"] += torch_only.declined_nodes
        partition_settings["require_full_compilation"] = False
    partition = _C.partition(program, partition_settings)
    plan = torch_only.explain(partition.plan)
    if settings.require_full_compilation and plan["unsupported"]:
        raise UnsupportedError(full_compilation_message(plan["unsupported"]))
    phase("partition_s")
    total, supported = plan["total_ops"], plan["supported_ops"]
    dryrun = bool(settings.dryrun)
    if settings.dryrun and settings.min_block_size > 1:
        logger.info("kiln: a dry run is most thorough with min_block_size=1")
    if supported == 0 or (supported < settings.min_block_size and not dryrun):
        warnings.warn(
            f"kiln: only {supported} of {total} ops are supported (min_block_size="
            f"{settings.min_block_size}); returning the program unchanged to run in PyTorch",
            stacklevel=3)
        if dryrun:
            emit_dryrun_report(format_dryrun_report(plan, settings), settings.dryrun)
        return gm

    module = _fx_split.split(gm, plan, inline_torch=not settings.use_fast_partitioner,
                             input_names=list(ep.graph_signature.user_inputs))
    module._kiln_arg_inputs = list(arg_specs)
    module._kiln_kwarg_inputs = dict(kwarg_specs)
    module._kiln_stats = stats
    phase("split_s")
    if dryrun:
        emit_dryrun_report(format_dryrun_report(plan, settings), settings.dryrun)
        return module

    specs = _flat_specs(ep, arg_specs, kwarg_specs)
    stats["profiles"] = partition.profiles(specs)  # the input specs must fit the program
    build_settings = _build_settings(settings)
    # The CUDA runtime times GEMM and convolution algorithms when it first binds an engine and
    # keeps the choices here (kiln.load's processes find them at the default path).
    _C.set_timing_cache_path(settings.timing_cache_path)
    cached_state: dict = {}

    def state_of() -> dict:
        if not cached_state:
            cached_state.update(_program_weights(ep))
        return cached_state

    state = state_of() if settings.strip_engine_weights else {}
    engine_sources: dict[str, bool] = {}  # engine name -> taken from the cache
    for index, segment in enumerate(plan["segments"]):
        if segment["kind"] != "acc":
            continue
        name = segment["name"]
        engine_started = time.perf_counter()
        try:
            engine = _engine_for(partition, index, name, build_settings, specs, settings, cache,
                                 lambda: _cpu_weights(state_of()), engine_sources)
            try:
                engine_module = _engine_module(engine, name, settings, state)
            except KilnError as error:
                if not engine_sources.get(name):
                    raise
                # Intact as a cache entry, but not an engine this kiln can load: rebuild it.
                logger.warning("kiln: engine cache entry for '%s' is unusable (%s); removing it "
                               "and building again", name, error)
                cache.remove(partition.cache_key(index, build_settings, specs))
                engine_sources[name] = False
                engine = _build(partition, index, name, build_settings, specs)
                if settings.cache_built_engines:
                    cache.insert(partition.cache_key(index, build_settings, specs), engine)
                engine_module = _engine_module(engine, name, settings, state)
            setattr(module, name, engine_module)
            stats.setdefault("engines", {})[name] = {
                "seconds": time.perf_counter() - engine_started, "bytes": len(engine),
                "source": "cache" if engine_sources.get(name) else "built"}
        except KilnError as error:
            if settings.pass_through_build_failures:
                raise
            warnings.warn(f"kiln: building engine '{name}' failed, so it runs in PyTorch: "
                          f"{error}", stacklevel=3)
    phase("engines_s")
    stats["total_s"] = time.perf_counter() - started + stats.get("lower_s", 0.0)
    logger.info("kiln: compiled %d of %d ops into %d engine(s) in %.2f s", supported, total,
                sum(1 for s in plan["segments"] if s["kind"] == "acc"),
                time.perf_counter() - started)
    return module


def _engine_module(engine: bytes, name: str, settings: CompilationSettings,
                   state: dict) -> KilnEngineModule:
    """The engine as a module; loading verifies it (lazy engines are verified without loading)."""
    weights = None
    if settings.strip_engine_weights or settings.lazy_engine_init:
        info = _C.Engine(engine, allow_stripped=True, inspect_only=True)
        if settings.strip_engine_weights:
            weights = {n: state[n] for n in info.weight_names}
    backend, _ = _backend_and_arch(settings)
    gpu_id = _gpu_index(settings) if backend == "cuda" and not settings.target else None
    return KilnEngineModule(engine, name, lazy=settings.lazy_engine_init, weights=weights,
                            gpu_id=gpu_id)


def _program_weights(ep) -> dict:
    weights = dict(ep.state_dict)
    weights.update(getattr(ep, "constants", {}) or {})
    return weights


def _cpu_weights(state: dict) -> dict:
    return {name: t.detach().cpu().contiguous() for name, t in state.items()
            if isinstance(t, torch.Tensor)}


def _build(partition, index: int, name: str, build_settings: dict, specs: list) -> bytes:
    started = time.perf_counter()
    engine = partition.build(index, build_settings, specs)
    logger.info("kiln: built engine '%s' (%.1f MB) in %.2f s", name, len(engine) / 1e6,
                time.perf_counter() - started)
    return engine


def _engine_for(partition, index: int, name: str, build_settings: dict, specs: list,
                settings: CompilationSettings, cache: Optional[BaseEngineCache],
                weights, sources: dict) -> bytes:
    key = None
    if cache is not None:
        key = partition.cache_key(index, build_settings, specs)
        if settings.reuse_cached_engines:
            cached = cache.check(key)
            if cached is not None:
                logger.info("kiln: engine '%s' from the cache (%s)", name, key)
                sources[name] = True
                if not settings.immutable_weights and not settings.strip_engine_weights:
                    # Refittable entries are keyed without the weights: put this program's in.
                    try:
                        cached = _C.refit_engine(cached, weights())
                    except KilnError:
                        return cached  # unusable: the caller's load fails and rebuilds
                return cached
    engine = _build(partition, index, name, build_settings, specs)
    if cache is not None and settings.cache_built_engines:
        cache.insert(key, engine)
    return engine


# --- save / load --------------------------------------------------------------------------------

def _examples(arg_specs, kwarg_specs):
    """Example tensors (opt shapes) and torch.export dynamic_shapes from Input specs."""
    from torch.export import Dim

    def example(spec: Input):
        return spec.example_tensor()

    def dims(spec: Input, label: str):
        if not spec.is_dynamic():
            return None
        result = {}
        spec_dict = spec.to_spec()
        for d, (lo, hi) in enumerate(zip(spec_dict["min"], spec_dict["max"])):
            if lo != hi:
                result[d] = Dim(f"{label}_{d}", min=lo, max=hi)
        return result or None

    args = [example(s) for s in arg_specs]
    kwargs = {k: example(s) for k, s in kwarg_specs.items()}
    dynamic = [dims(s, f"arg{i}") for i, s in enumerate(arg_specs)]
    dynamic_kw = {k: dims(s, f"kw_{k}") for k, s in kwarg_specs.items()}
    dynamic_shapes = None
    if any(d is not None for d in dynamic) or any(d is not None for d in dynamic_kw.values()):
        dynamic_shapes = {"args": tuple(dynamic), "kwargs": dynamic_kw} if kwarg_specs \
            else tuple(dynamic)
    return args, kwargs, dynamic_shapes


def _export_compiled(module, arg_inputs, kwarg_inputs, dynamic_shapes, what):
    """torch.export of a compiled module; example inputs default to compile()'s (opt shapes, with
    their dynamic ranges)."""
    from kiln._input import prepare_inputs

    if arg_inputs is None:
        arg_specs = getattr(module, "_kiln_arg_inputs", None)
        kwarg_specs = getattr(module, "_kiln_kwarg_inputs", {}) if kwarg_inputs is None \
            else prepare_inputs(dict(kwarg_inputs))
        if arg_specs is None:
            raise InvalidArgumentError(
                f"{what}: this module does not record its inputs (it was not made by "
                "kiln.compile); pass arg_inputs (example tensors or kiln.Input)")
    else:
        arg_specs = prepare_inputs(list(arg_inputs))
        kwarg_specs = prepare_inputs(dict(kwarg_inputs or {}))
    args, kwargs, auto_dynamic = _examples(arg_specs, kwarg_specs)
    return torch.export.export(module, tuple(args), kwargs,
                               dynamic_shapes=dynamic_shapes if dynamic_shapes is not None
                               else auto_dynamic, strict=False)


def save(module: torch.nn.Module, file_path: str, *, inputs=None, arg_inputs=None,
         kwarg_inputs=None, dynamic_shapes=None) -> None:
    """Saves a compiled module as a torch.export program (``.pt2``) in which each engine is a call
    to the ``kiln::execute_engine`` op with the engine's bytes as a constant. :func:`kiln.load` (or
    ``torch.export.load`` after ``import kiln``) restores it in a fresh process.

    The example inputs default to the ``inputs`` given to compile() (their opt shapes, with the
    dynamic ranges they declared)."""
    if not file_path:
        raise InvalidArgumentError("save: the file path is empty; give the path to write")
    if inputs is not None and arg_inputs is not None:
        raise InvalidArgumentError("save: give inputs or arg_inputs, not both")
    ep = _export_compiled(module, inputs if inputs is not None else arg_inputs, kwarg_inputs,
                          dynamic_shapes, "save")
    directory = os.path.dirname(os.path.abspath(file_path))
    os.makedirs(directory, exist_ok=True)
    root, extension = os.path.splitext(file_path)
    temporary = f"{root}.tmp{os.getpid()}{extension or '.pt2'}"  # torch wants a .pt2 ending
    try:
        torch.export.save(ep, temporary)
        os.replace(temporary, file_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    logger.info("kiln: saved the compiled module to %s", file_path)


def load(file_path: str) -> "torch.export.ExportedProgram":
    """Loads a program written by :func:`kiln.save`; call ``.module()`` on the result to run it."""
    if not file_path:
        raise InvalidArgumentError("load: the file path is empty; give the path to read")
    if not os.path.exists(file_path):
        from kiln.errors import NotFoundError

        raise NotFoundError(f"load: no file at {file_path}")
    from kiln._archive import mapped_records

    # The engines' bytes (a model's weights) are read in place, not copied (kiln/_archive.py).
    with mapped_records(os.fspath(file_path)):
        return torch.export.load(file_path)


def save_cross_compiled_exported_program(gm: torch.fx.GraphModule, file_path: str) -> None:
    """The seed's name for :func:`save` of a :func:`cross_compile` result."""
    save(gm, file_path)


def load_cross_compiled_exported_program(file_path: str = ""):
    """The seed's name for :func:`load`: kiln engines load on any OS with a matching GPU."""
    return load(file_path)
