"""compile()'s settings: the CompilationSettings dataclass and the checks that make one.

resolve_settings() keeps the contract of ``torch_tensorrt.dynamo.compile``: the same keywords and
defaults, the same deprecations (warned) and the same conflicts (raised, with the same exception
types), in the same order. On top of that kiln refuses what it would otherwise have to ignore: an
unknown keyword, a value of the wrong type or range, and any setting that cannot mean anything
here (DLA sizes, safety capability, a Python runtime, ...) set to other than its default.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from kiln import _defaults
from kiln._device import Device
from kiln._engine_cache import BaseEngineCache, DiskEngineCache
from kiln._enums import EngineCapability, dtype
from kiln._input import prepare_inputs

logger = logging.getLogger("kiln")


@dataclass
class CompilationSettings:
    """Every compile() setting, checked and normalized (see resolve_settings)."""

    device: Device = field(default_factory=lambda: Device._from(None))
    disable_tf32: bool = _defaults.DISABLE_TF32
    assume_dynamic_shape_support: bool = _defaults.ASSUME_DYNAMIC_SHAPE_SUPPORT
    sparse_weights: bool = _defaults.SPARSE_WEIGHTS
    enabled_precisions: set = field(default_factory=lambda: set(_defaults.ENABLED_PRECISIONS))
    engine_capability: EngineCapability = _defaults.ENGINE_CAPABILITY
    num_avg_timing_iters: int = _defaults.NUM_AVG_TIMING_ITERS
    workspace_size: int = _defaults.WORKSPACE_SIZE
    dla_sram_size: int = _defaults.DLA_SRAM_SIZE
    dla_local_dram_size: int = _defaults.DLA_LOCAL_DRAM_SIZE
    dla_global_dram_size: int = _defaults.DLA_GLOBAL_DRAM_SIZE
    truncate_double: bool = _defaults.TRUNCATE_DOUBLE
    require_full_compilation: bool = _defaults.REQUIRE_FULL_COMPILATION
    min_block_size: int = _defaults.MIN_BLOCK_SIZE
    # Op names as torch prints them: "aten.sort.default" (an overload) or "aten.sort" (all).
    torch_executed_ops: set = field(default_factory=set)
    torch_executed_modules: set = field(default_factory=set)
    pass_through_build_failures: bool = _defaults.PASS_THROUGH_BUILD_FAILURES
    max_aux_streams: Optional[int] = _defaults.MAX_AUX_STREAMS
    version_compatible: bool = _defaults.VERSION_COMPATIBLE
    optimization_level: Optional[int] = _defaults.OPTIMIZATION_LEVEL
    use_python_runtime: bool = _defaults.USE_PYTHON_RUNTIME
    use_fast_partitioner: bool = _defaults.USE_FAST_PARTITIONER
    enable_experimental_decompositions: bool = _defaults.ENABLE_EXPERIMENTAL_DECOMPOSITIONS
    dryrun: Union[bool, str] = _defaults.DRYRUN  # True, or a path to write the report to
    hardware_compatible: bool = _defaults.HARDWARE_COMPATIBLE
    timing_cache_path: str = _defaults.TIMING_CACHE_PATH
    lazy_engine_init: bool = _defaults.LAZY_ENGINE_INIT
    cache_built_engines: bool = _defaults.CACHE_BUILT_ENGINES
    reuse_cached_engines: bool = _defaults.REUSE_CACHED_ENGINES
    engine_cache_dir: str = _defaults.ENGINE_CACHE_DIR
    engine_cache_size: int = _defaults.ENGINE_CACHE_SIZE
    custom_engine_cache: Optional[BaseEngineCache] = field(
        default=_defaults.CUSTOM_ENGINE_CACHE, repr=False, compare=False)
    use_explicit_typing: bool = _defaults.USE_EXPLICIT_TYPING
    use_fp32_acc: bool = _defaults.USE_FP32_ACC
    refit_identical_engine_weights: bool = _defaults.REFIT_IDENTICAL_ENGINE_WEIGHTS
    strip_engine_weights: bool = _defaults.STRIP_ENGINE_WEIGHTS
    immutable_weights: bool = _defaults.IMMUTABLE_WEIGHTS
    enable_weight_streaming: bool = _defaults.ENABLE_WEIGHT_STREAMING
    tiling_optimization_level: str = _defaults.TILING_OPTIMIZATION_LEVEL
    l2_limit_for_tiling: int = _defaults.L2_LIMIT_FOR_TILING
    offload_module_to_cpu: bool = _defaults.OFFLOAD_MODULE_TO_CPU
    use_distributed_mode_trace: bool = _defaults.USE_DISTRIBUTED_MODE_TRACE
    enable_cross_compile_for_windows: bool = _defaults.ENABLE_CROSS_COMPILE_FOR_WINDOWS
    # kiln's own: the GPU architecture to build for ("sm_90"); None builds for `device`.
    target: Optional[str] = _defaults.TARGET


# The keywords of compile() that settings_kwargs carries, and the ones **kwargs may carry: the
# seed's deprecated spellings and its Windows switch. Anything else is a mistake.
SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(CompilationSettings)) - {
    "enable_cross_compile_for_windows"}
EXTRA_KEYWORDS = frozenset({"debug", "truncate_long_and_double", "refit", "make_refittable",
                            "enable_cross_compile_for_windows"})


def _default_of(name: str) -> Any:
    if name in ("torch_executed_ops", "torch_executed_modules"):
        return None  # compile()'s default; normalized to an empty set
    return getattr(_defaults, name.upper())


_BOOL_SETTINGS = (
    "disable_tf32", "assume_dynamic_shape_support", "sparse_weights", "truncate_double",
    "require_full_compilation", "pass_through_build_failures", "version_compatible",
    "use_python_runtime", "use_fast_partitioner", "enable_experimental_decompositions",
    "hardware_compatible", "lazy_engine_init", "cache_built_engines", "reuse_cached_engines",
    "use_explicit_typing", "use_fp32_acc", "refit_identical_engine_weights", "strip_engine_weights",
    "immutable_weights", "enable_weight_streaming", "offload_module_to_cpu",
    "use_distributed_mode_trace",
)

# Settings that only mean something for TensorRT: accepted at their default, refused otherwise.
_NO_DLA = "kiln has no DLA support, so DLA memory sizes mean nothing to it"
_FIXED_SETTINGS = (
    ("dla_sram_size", _NO_DLA),
    ("dla_local_dram_size", _NO_DLA),
    ("dla_global_dram_size", _NO_DLA),
    ("max_aux_streams", "kiln runs each engine on the caller's CUDA stream and creates no "
                        "auxiliary streams"),
    ("l2_limit_for_tiling", "kiln has no tiling optimization to limit"),
)
_REFUSED_WHEN_TRUE = (
    ("sparse_weights", "kiln has no structured-sparsity kernels"),
    ("use_python_runtime", "kiln has one runtime, in C++; compiled modules always use it"),
    ("use_distributed_mode_trace", "kiln does not trace distributed (DTensor) programs"),
    ("enable_weight_streaming", "kiln engines keep all their weights on the device; there is no "
                                "weight streaming"),
)

_TARGET = re.compile(r"^sm_\d{2,3}[a-z]?$")


def _warn_deprecated(message: str, stacklevel: int) -> None:
    # +1 for this helper: stacklevel counts as if warn() were called in resolve_settings itself.
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel + 1)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, found {_type_name(value)} {value!r}")
    return value


def _check_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, found {_type_name(value)} {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, found {value}")
    return int(value)


def _check_path(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"{name} must be a non-empty path, found {_type_name(value)} {value!r}")
    return os.fspath(value)


def _normalize_precisions(value: Any) -> set:
    if isinstance(value, (str, bytes)) or not isinstance(value, collections.abc.Collection):
        raise TypeError("enabled_precisions must be a set of dtypes such as {torch.float16}, "
                        f"found {_type_name(value)} {value!r}")
    return {dtype._from(p) for p in value}


def _op_name(op: Any, where: str) -> str:
    if isinstance(op, str):
        if not op.strip():
            raise ValueError(f"{where}: an op name must not be empty")
        return op.strip()
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(op, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return str(op)  # "aten.sort.default" for an overload, "aten.sort" for a packet
    raise TypeError(f"{where}: expected an op such as torch.ops.aten.sort.default or its name "
                    f"'aten.sort.default', found {_type_name(op)} {op!r}")


def _normalize_ops(value: Any) -> set:
    if value is None:
        return set()
    torch = sys.modules.get("torch")
    op_types = () if torch is None else (torch._ops.OpOverload, torch._ops.OpOverloadPacket)
    single = isinstance(value, (str, *op_types))
    if single or not isinstance(value, collections.abc.Iterable):
        raise TypeError("torch_executed_ops must be a collection of ops, e.g. "
                        f"{{torch.ops.aten.sort.default}}, found {_type_name(value)} {value!r}")
    return {_op_name(op, f"torch_executed_ops item {i}") for i, op in enumerate(value)}


def _normalize_modules(value: Any) -> set:
    if value is None:
        return set()
    if isinstance(value, str) or not isinstance(value, collections.abc.Iterable):
        raise TypeError("torch_executed_modules must be a list of module names, found "
                        f"{_type_name(value)} {value!r}")
    names = set()
    for i, m in enumerate(value):
        if not isinstance(m, str) or not m:
            raise TypeError(f"torch_executed_modules item {i} must be a non-empty str, found "
                            f"{_type_name(m)} {m!r}")
        names.add(m)
    return names


def _normalize_dryrun(value: Any) -> Union[bool, str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return os.fspath(value)
    raise TypeError("dryrun must be True, False or the path of a file to write the report to, "
                    f"found {_type_name(value)} {value!r}")


def _unknown_keywords(names: list[str]) -> TypeError:
    known = sorted(SETTING_NAMES | EXTRA_KEYWORDS | {"inputs", "arg_inputs", "kwarg_inputs"})
    parts = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "argument" if len(names) == 1 else "arguments"
    return TypeError(f"unexpected keyword {noun} {', '.join(parts)}; kiln does not ignore "
                     "settings it does not know")


def resolve_settings(settings_kwargs: dict, extra_kwargs: dict, *, inputs: Any, arg_inputs: Any,
                     kwarg_inputs: Any, stacklevel: int,
                     ) -> tuple[CompilationSettings, list, dict, Optional[BaseEngineCache]]:
    """Checks and normalizes compile()'s keywords.

    ``settings_kwargs`` maps compile()'s named keywords (any of SETTING_NAMES; missing ones take
    their defaults) to their values; ``extra_kwargs`` is compile()'s ``**kwargs`` (the seed's
    deprecated keywords, and ``target`` where the caller has no named keyword for it).
    ``stacklevel`` goes to warnings.warn for the deprecation warnings as if warn() were called
    here: 1 points at resolve_settings, 2 at its caller, and so on up to the user's call.

    Returns the settings, the positional inputs as a list and the keyword inputs as a dict (both
    of kiln.Input, nested as given), and the engine cache to use (None when caching is off).
    """
    unknown = sorted(set(settings_kwargs) - SETTING_NAMES)
    if unknown:
        raise _unknown_keywords(unknown)
    s = {name: _default_of(name) for name in SETTING_NAMES}
    s.update(settings_kwargs)
    extra = dict(extra_kwargs or {})
    if "target" in extra:  # kiln's own setting, accepted from **kwargs too
        if "target" in settings_kwargs:
            raise TypeError("'target' was given twice (as a named keyword and in **kwargs)")
        s["target"] = extra.pop("target")
    unknown = sorted(k for k in extra if k not in EXTRA_KEYWORDS)
    if unknown:
        raise _unknown_keywords(unknown)

    # The seed's deprecations and conflicts, in its order.
    if extra.get("debug", False):
        _warn_deprecated("'debug' is deprecated and has no effect; for kiln's diagnostics set the "
                         "level of the 'kiln' logger, e.g. logging.getLogger('kiln')"
                         ".setLevel(logging.DEBUG)", stacklevel)

    if "truncate_long_and_double" in extra:
        # Identity test, as the seed does: any value other than the default False object counts
        # as "truncate_double was given".
        if s["truncate_double"] is not _defaults.TRUNCATE_DOUBLE:
            raise ValueError("both 'truncate_double' and its deprecated spelling "
                             "'truncate_long_and_double' were given; give only 'truncate_double'")
        s["truncate_double"] = extra["truncate_long_and_double"]
        _warn_deprecated("'truncate_long_and_double' is deprecated: int64 is supported natively, "
                         "so only float64 needs truncating; use 'truncate_double'", stacklevel)

    # The seed raises whenever immutable_weights is true, and immutable_weights defaults to True,
    # so passing 'refit' or 'make_refittable' alone always fails; only together with an explicit
    # immutable_weights=False do they take effect (setting immutable_weights = not value). kiln
    # keeps that logic as it is.
    for old in ("refit", "make_refittable"):
        if old in extra:
            _warn_deprecated(f"'{old}' is deprecated; pass immutable_weights=False to build an "
                             "engine whose weights can be refitted", stacklevel)
            if s["immutable_weights"]:
                raise ValueError(f"'{old}' is deprecated and cannot be combined with "
                                 "immutable_weights=True (the default); use immutable_weights "
                                 "alone (immutable_weights=False for a refittable engine)")
            s["immutable_weights"] = not extra[old]

    if s["refit_identical_engine_weights"] and s["immutable_weights"]:
        raise ValueError("refit_identical_engine_weights=True needs immutable_weights=False: only "
                         "a refittable engine can be refitted with identical weights")

    if extra.get("enable_cross_compile_for_windows", False):
        raise ValueError("enable_cross_compile_for_windows is not a compile() setting in kiln: "
                         "kiln engines do not depend on the OS; to build for another machine use "
                         "kiln.cross_compile(..., target='sm_XX')")

    engine_capability = EngineCapability._from(s["engine_capability"])
    precisions = _normalize_precisions(s["enabled_precisions"])

    if s["use_explicit_typing"] and precisions != {dtype.f32}:
        shown = ", ".join(sorted(p.value for p in precisions)) or "nothing"
        raise AssertionError("use_explicit_typing=True takes each layer's precision from the "
                             "program's own dtypes, so enabled_precisions must stay {float32}; "
                             f"found {{{shown}}}")

    if s["use_fp32_acc"]:
        logger.debug("use_fp32_acc: matmuls in float16/bfloat16 will accumulate in float32; with "
                     "float32 weights this changes nothing")

    if s["enable_weight_streaming"] and not s["use_explicit_typing"]:
        raise AssertionError("enable_weight_streaming=True requires use_explicit_typing=True")

    if inputs is None and arg_inputs is None and kwarg_inputs is None:
        raise AssertionError("no inputs: give 'inputs' (or its alias 'arg_inputs') and/or "
                             "'kwarg_inputs'")
    if inputs is not None and arg_inputs is not None:
        raise AssertionError("'inputs' and 'arg_inputs' are the same argument; give only one")

    positional = inputs if inputs is not None else arg_inputs
    where = "inputs" if inputs is not None else "arg_inputs"
    if positional is None:
        positional = []
    if not isinstance(positional, collections.abc.Sequence):
        positional = [positional]
    if kwarg_inputs is None:
        kwarg_inputs = {}
    if not isinstance(kwarg_inputs, collections.abc.Mapping):
        raise TypeError("kwarg_inputs must be a dict of argument name to tensor or kiln.Input, "
                        f"found {_type_name(kwarg_inputs)}")
    arg_specs = list(prepare_inputs(list(positional) if isinstance(positional, tuple)
                                    else positional, where))
    kwarg_specs = prepare_inputs(dict(kwarg_inputs), "kwarg_inputs")

    device = Device._from(s["device"])
    if not precisions:
        precisions = set(_defaults.ENABLED_PRECISIONS)

    # kiln's own checks: types and ranges, then settings it cannot honour.
    for name in _BOOL_SETTINGS:
        _check_bool(name, s[name])
    _check_int("min_block_size", s["min_block_size"], 1)
    _check_int("workspace_size", s["workspace_size"], 0)
    _check_int("num_avg_timing_iters", s["num_avg_timing_iters"], 1)
    if s["optimization_level"] is not None:
        _check_int("optimization_level", s["optimization_level"], 0,
                   _defaults.MAX_OPTIMIZATION_LEVEL)
    _check_int("engine_cache_size", s["engine_cache_size"], 0)

    for name, reason in _FIXED_SETTINGS:
        default = _default_of(name)
        if s[name] != default or isinstance(s[name], bool):
            raise ValueError(f"{name}={s[name]!r} is not supported: {reason}; leave it at its "
                             f"default ({default!r})")
    if engine_capability is not EngineCapability.STANDARD:
        raise ValueError(f"engine_capability={engine_capability.name} is not supported: kiln "
                         "builds STANDARD engines only (no safety-certified or DLA kernels)")
    for name, reason in _REFUSED_WHEN_TRUE:
        if s[name]:
            raise ValueError(f"{name}=True is not supported: {reason}")
    tiling = s["tiling_optimization_level"]
    if not isinstance(tiling, str):
        raise TypeError(f"tiling_optimization_level must be a str, found {_type_name(tiling)} "
                        f"{tiling!r}")
    if tiling not in _defaults.TILING_OPTIMIZATION_LEVELS:
        raise ValueError(f"tiling_optimization_level must be one of "
                         f"{', '.join(_defaults.TILING_OPTIMIZATION_LEVELS)}, found {tiling!r}")
    if tiling != _defaults.TILING_OPTIMIZATION_LEVEL:
        raise ValueError(f"tiling_optimization_level={tiling!r} is not supported: kiln has no "
                         "tiling optimization; leave it at 'none'")

    unsupported = precisions - _defaults.SUPPORTED_KERNEL_PRECISIONS
    if unsupported:
        names = ", ".join(sorted(p.value for p in unsupported))
        supported = ", ".join(sorted(p.value for p in _defaults.SUPPORTED_KERNEL_PRECISIONS))
        raise ValueError(f"enabled_precisions: kiln has no kernels in {names}; the supported "
                         f"precisions are {supported}")

    dryrun = _normalize_dryrun(s["dryrun"])
    custom = s["custom_engine_cache"]
    if custom is not None and not isinstance(custom, BaseEngineCache):
        raise TypeError("custom_engine_cache must be an instance of a kiln.BaseEngineCache "
                        f"subclass, found {_type_name(custom)}")
    executed_ops = _normalize_ops(s["torch_executed_ops"])
    executed_modules = _normalize_modules(s["torch_executed_modules"])
    if s["require_full_compilation"] and (executed_ops or executed_modules):
        what = "torch_executed_ops" if executed_ops else "torch_executed_modules"
        raise ValueError(f"require_full_compilation=True asks for the whole graph in engines, but "
                         f"{what} asks for parts of it to run in PyTorch; drop one of the two")
    target = s["target"]
    if target is not None and (not isinstance(target, str) or _TARGET.match(target) is None):
        raise ValueError(f"target must be a GPU architecture like 'sm_90' (or None for the device "
                         f"in use), found {target!r}")

    settings = CompilationSettings(
        device=device,
        disable_tf32=s["disable_tf32"],
        assume_dynamic_shape_support=s["assume_dynamic_shape_support"],
        sparse_weights=s["sparse_weights"],
        enabled_precisions=precisions,
        engine_capability=engine_capability,
        num_avg_timing_iters=s["num_avg_timing_iters"],
        workspace_size=s["workspace_size"],
        dla_sram_size=s["dla_sram_size"],
        dla_local_dram_size=s["dla_local_dram_size"],
        dla_global_dram_size=s["dla_global_dram_size"],
        truncate_double=s["truncate_double"],
        require_full_compilation=s["require_full_compilation"],
        min_block_size=s["min_block_size"],
        torch_executed_ops=executed_ops,
        torch_executed_modules=executed_modules,
        pass_through_build_failures=s["pass_through_build_failures"],
        max_aux_streams=s["max_aux_streams"],
        version_compatible=s["version_compatible"],
        optimization_level=s["optimization_level"],
        use_python_runtime=s["use_python_runtime"],
        use_fast_partitioner=s["use_fast_partitioner"],
        enable_experimental_decompositions=s["enable_experimental_decompositions"],
        dryrun=dryrun,
        hardware_compatible=s["hardware_compatible"],
        timing_cache_path=_check_path("timing_cache_path", s["timing_cache_path"]),
        lazy_engine_init=s["lazy_engine_init"],
        cache_built_engines=s["cache_built_engines"],
        reuse_cached_engines=s["reuse_cached_engines"],
        engine_cache_dir=_check_path("engine_cache_dir", s["engine_cache_dir"]),
        engine_cache_size=s["engine_cache_size"],
        custom_engine_cache=custom,
        use_explicit_typing=s["use_explicit_typing"],
        use_fp32_acc=s["use_fp32_acc"],
        refit_identical_engine_weights=s["refit_identical_engine_weights"],
        strip_engine_weights=s["strip_engine_weights"],
        immutable_weights=s["immutable_weights"],
        enable_weight_streaming=s["enable_weight_streaming"],
        tiling_optimization_level=tiling,
        l2_limit_for_tiling=s["l2_limit_for_tiling"],
        offload_module_to_cpu=s["offload_module_to_cpu"],
        use_distributed_mode_trace=s["use_distributed_mode_trace"],
        target=target,
    )

    engine_cache: Optional[BaseEngineCache] = None
    if settings.cache_built_engines or settings.reuse_cached_engines:
        engine_cache = custom if custom is not None else DiskEngineCache(
            settings.engine_cache_dir, settings.engine_cache_size)
    elif custom is not None:
        logger.warning("custom_engine_cache is given but neither cache_built_engines nor "
                       "reuse_cached_engines is set, so the cache is not used")
    return settings, arg_specs, kwarg_specs, engine_cache


def _device_arch(device: Device) -> str:
    """The architecture engines for ``device`` are built for: "sm_90", or "cpu"."""
    if not device.is_cuda:
        return "cpu"
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device.gpu_id)
            return f"sm_{major}{minor}"
    except Exception:  # no usable driver: fall back to the device's name
        pass
    return str(device)


def settings_digest_fields(settings: CompilationSettings) -> dict:
    """The settings that change what an engine's bytes are, as plain JSON-able values, for the
    engine cache key. Graph-shaping settings (min_block_size, torch_executed_ops, ...) are not
    here: they change the subgraph, which the key hashes itself. ``target`` falls back to the
    architecture of ``settings.device``, so GPUs of different archs never share an entry."""
    return {
        "enabled_precisions": sorted(p.value for p in settings.enabled_precisions),
        "use_explicit_typing": settings.use_explicit_typing,
        "use_fp32_acc": settings.use_fp32_acc,
        "disable_tf32": settings.disable_tf32,
        "optimization_level": settings.optimization_level,
        "workspace_size": settings.workspace_size,
        "hardware_compatible": settings.hardware_compatible,
        "version_compatible": settings.version_compatible,
        "assume_dynamic_shape_support": settings.assume_dynamic_shape_support,
        "truncate_double": settings.truncate_double,
        "refittable": not settings.immutable_weights,
        "strip_engine_weights": settings.strip_engine_weights,
        "target": settings.target or _device_arch(settings.device),
        "num_avg_timing_iters": settings.num_avg_timing_iters,
    }


__all__ = ["CompilationSettings", "resolve_settings", "settings_digest_fields"]
