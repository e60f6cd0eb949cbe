"""compile()'s settings: defaults, the seed's deprecations and conflicts, kiln's own checks, and the
types they are built from (dtype, EngineCapability, Device, Input, prepare_inputs).

Pure Python: nothing here builds an engine.
"""
from __future__ import annotations

import collections
import logging
import os
import pathlib
import tempfile
import warnings

import numpy as np
import pytest
import torch

from kiln import _defaults
from kiln._device import Device
from kiln._engine_cache import BaseEngineCache, DiskEngineCache
from kiln._enums import DeviceType, EngineCapability, dtype
from kiln._input import Input, prepare_inputs
from kiln._settings import (SETTING_NAMES, CompilationSettings, resolve_settings,
                            settings_digest_fields)


def resolve(inputs=None, *, arg_inputs=None, kwarg_inputs=None, extra=None, **settings):
    if inputs is None and arg_inputs is None and kwarg_inputs is None:
        inputs = [torch.zeros(2, 3)]
    return resolve_settings(settings, extra or {}, inputs=inputs, arg_inputs=arg_inputs,
                            kwarg_inputs=kwarg_inputs, stacklevel=2)


class MemoryCache(BaseEngineCache):
    def __init__(self):
        self.blobs = {}

    def save(self, hash, blob):
        self.blobs[hash] = bytes(blob)

    def load(self, hash):
        return self.blobs.get(hash)


# --- defaults -------------------------------------------------------------------------------------

def test_defaults_match_the_contract():
    tmp = tempfile.gettempdir()
    expected = {
        "DEVICE": None, "DISABLE_TF32": False, "ASSUME_DYNAMIC_SHAPE_SUPPORT": False,
        "SPARSE_WEIGHTS": False, "ENABLED_PRECISIONS": {dtype.f32},
        "ENGINE_CAPABILITY": EngineCapability.STANDARD, "NUM_AVG_TIMING_ITERS": 1,
        "WORKSPACE_SIZE": 0, "DLA_SRAM_SIZE": 1048576, "DLA_LOCAL_DRAM_SIZE": 1073741824,
        "DLA_GLOBAL_DRAM_SIZE": 536870912, "TRUNCATE_DOUBLE": False,
        "REQUIRE_FULL_COMPILATION": False, "MIN_BLOCK_SIZE": 5,
        "PASS_THROUGH_BUILD_FAILURES": False, "MAX_AUX_STREAMS": None, "VERSION_COMPATIBLE": False,
        "OPTIMIZATION_LEVEL": None, "USE_PYTHON_RUNTIME": False, "USE_FAST_PARTITIONER": True,
        "ENABLE_EXPERIMENTAL_DECOMPOSITIONS": False, "DRYRUN": False, "HARDWARE_COMPATIBLE": False,
        "TIMING_CACHE_PATH": os.path.join(tmp, "kiln_engine_cache", "timing_cache.bin"),
        "LAZY_ENGINE_INIT": False, "CACHE_BUILT_ENGINES": False, "REUSE_CACHED_ENGINES": False,
        "ENGINE_CACHE_DIR": os.path.join(tmp, "kiln_engine_cache"),
        "ENGINE_CACHE_SIZE": 5368709120, "CUSTOM_ENGINE_CACHE": None,
        "USE_EXPLICIT_TYPING": False, "USE_FP32_ACC": False,
        "REFIT_IDENTICAL_ENGINE_WEIGHTS": False, "STRIP_ENGINE_WEIGHTS": False,
        "IMMUTABLE_WEIGHTS": True, "ENABLE_WEIGHT_STREAMING": False,
        "TILING_OPTIMIZATION_LEVEL": "none", "L2_LIMIT_FOR_TILING": -1,
        "OFFLOAD_MODULE_TO_CPU": False, "USE_DISTRIBUTED_MODE_TRACE": False,
    }
    for name, value in expected.items():
        assert getattr(_defaults, name) == value, name


def test_compilation_settings_defaults_come_from_defaults_module():
    s = CompilationSettings()
    for name in SETTING_NAMES - {"device", "torch_executed_ops", "torch_executed_modules",
                                 "target"}:
        assert getattr(s, name) == getattr(_defaults, name.upper()), name
    assert s.torch_executed_ops == set() and s.torch_executed_modules == set()
    assert s.target is None
    assert s.device == Device._from(None)
    # Each settings object owns its precision set: changing one must not change the defaults.
    s.enabled_precisions.add(dtype.f16)
    assert CompilationSettings().enabled_precisions == {dtype.f32}


def test_resolve_with_defaults_only():
    settings, args, kwargs, cache = resolve([torch.zeros(2, 3, dtype=torch.float16)])
    assert settings == CompilationSettings(device=settings.device)
    assert args == [Input((2, 3), dtype=torch.float16)]
    assert kwargs == {} and cache is None


def test_explicit_defaults_are_accepted():
    given = {name: getattr(_defaults, name.upper()) for name in SETTING_NAMES
             if name not in ("torch_executed_ops", "torch_executed_modules")}
    settings, _, _, _ = resolve(**given)
    assert settings.dla_sram_size == _defaults.DLA_SRAM_SIZE
    assert settings.engine_capability is EngineCapability.STANDARD


# --- the seed's deprecations and conflicts ------------------------------------------------------

def test_debug_is_deprecated():
    with pytest.warns(DeprecationWarning, match="'debug' is deprecated") as record:
        resolve(extra={"debug": True})
    # stacklevel=2 is the caller of resolve_settings: the helper `resolve` in this file.
    assert record[0].filename == __file__


def test_debug_false_says_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve(extra={"debug": False})


def test_truncate_long_and_double_is_deprecated_and_sets_truncate_double():
    with pytest.warns(DeprecationWarning, match="truncate_long_and_double.*deprecated"):
        settings, _, _, _ = resolve(extra={"truncate_long_and_double": True})
    assert settings.truncate_double is True


def test_truncate_long_and_double_with_truncate_double_is_an_error():
    with pytest.raises(ValueError, match="both 'truncate_double' and .*truncate_long_and_double"):
        resolve(truncate_double=True, extra={"truncate_long_and_double": True})


@pytest.mark.parametrize("old", ["refit", "make_refittable"])
def test_refit_keywords_fail_with_default_immutable_weights(old):
    # The seed's logic: immutable_weights defaults to True, and that alone makes these fail.
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated"):
        with pytest.raises(ValueError, match=f"'{old}' is deprecated and cannot be combined"):
            resolve(extra={old: True})


@pytest.mark.parametrize("old", ["refit", "make_refittable"])
@pytest.mark.parametrize("value, immutable", [(True, False), (False, True)])
def test_refit_keywords_with_mutable_weights(old, value, immutable):
    with pytest.warns(DeprecationWarning, match=old):
        settings, _, _, _ = resolve(immutable_weights=False, extra={old: value})
    assert settings.immutable_weights is immutable


def test_refit_identical_engine_weights_needs_mutable_weights():
    with pytest.raises(ValueError, match="refit_identical_engine_weights=True needs "
                                         "immutable_weights=False"):
        resolve(refit_identical_engine_weights=True)
    settings, _, _, _ = resolve(refit_identical_engine_weights=True, immutable_weights=False)
    assert settings.refit_identical_engine_weights


def test_cross_compile_for_windows_points_to_cross_compile():
    with pytest.raises(ValueError, match=r"kiln\.cross_compile"):
        resolve(extra={"enable_cross_compile_for_windows": True})
    settings, _, _, _ = resolve(extra={"enable_cross_compile_for_windows": False})
    assert settings.enable_cross_compile_for_windows is False


def test_explicit_typing_needs_float32_precisions():
    with pytest.raises(AssertionError, match=r"use_explicit_typing=True .* found \{float16\}"):
        resolve(use_explicit_typing=True, enabled_precisions={torch.float16})
    with pytest.raises(AssertionError, match="use_explicit_typing"):
        resolve(use_explicit_typing=True, enabled_precisions={torch.float32, torch.float16})
    settings, _, _, _ = resolve(use_explicit_typing=True, enabled_precisions={torch.float32})
    assert settings.use_explicit_typing


def test_weight_streaming_needs_explicit_typing_then_is_unsupported():
    with pytest.raises(AssertionError, match="enable_weight_streaming=True requires "
                                             "use_explicit_typing=True"):
        resolve(enable_weight_streaming=True)
    with pytest.raises(ValueError, match="enable_weight_streaming=True is not supported"):
        resolve(enable_weight_streaming=True, use_explicit_typing=True)


def test_inputs_must_be_given_once():
    with pytest.raises(AssertionError, match="no inputs"):
        resolve_settings({}, {}, inputs=None, arg_inputs=None, kwarg_inputs=None, stacklevel=1)
    with pytest.raises(AssertionError, match="'inputs' and 'arg_inputs' are the same argument"):
        resolve([torch.zeros(1)], arg_inputs=[torch.zeros(1)])


def test_torch_executed_ops_conflict_with_full_compilation():
    with pytest.raises(ValueError, match="require_full_compilation=True .* torch_executed_ops"):
        resolve(require_full_compilation=True, torch_executed_ops={torch.ops.aten.sort.default})
    with pytest.raises(ValueError, match="torch_executed_modules"):
        resolve(require_full_compilation=True, torch_executed_modules=["layer1"])
    settings, _, _, _ = resolve(require_full_compilation=True, torch_executed_ops=set())
    assert settings.require_full_compilation


def test_torch_executed_modules_is_supported_without_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="kiln"), warnings.catch_warnings():
        warnings.simplefilter("error")
        settings, _, _, _ = resolve(torch_executed_modules=["encoder.layer.0", "pooler"])
    assert settings.torch_executed_modules == {"encoder.layer.0", "pooler"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(TypeError, match="torch_executed_modules must be a list"):
        resolve(torch_executed_modules="pooler")
    with pytest.raises(TypeError, match="torch_executed_modules item 1"):
        resolve(torch_executed_modules=["pooler", 3])


# --- kiln's own checks ----------------------------------------------------------------------------

def test_unknown_keywords_are_errors():
    with pytest.raises(TypeError, match=r"'min_blok_size' \(did you mean 'min_block_size'\?\)"):
        resolve(extra={"min_blok_size": 3})
    with pytest.raises(TypeError, match="'frobnicate', 'zap'"):
        resolve(extra={"zap": 1, "frobnicate": 2})
    with pytest.raises(TypeError, match="'bogus_setting'"):
        resolve(bogus_setting=1)


def test_target_is_accepted_from_kwargs_too():
    settings, _, _, _ = resolve(extra={"target": "sm_90"})
    assert settings.target == "sm_90"
    settings, _, _, _ = resolve(target="sm_100a")
    assert settings.target == "sm_100a"
    with pytest.raises(TypeError, match="'target' was given twice"):
        resolve(target="sm_90", extra={"target": "sm_80"})
    for bad in ("sm90", "90", "compute_90x", 90):
        with pytest.raises(ValueError, match="target must be a GPU architecture"):
            resolve(target=bad)


@pytest.mark.parametrize("name, value, match", [
    ("dla_sram_size", 2 * 1048576, "dla_sram_size=2097152 is not supported: kiln has no DLA"),
    ("dla_local_dram_size", 1, "dla_local_dram_size=1 is not supported: kiln has no DLA"),
    ("dla_global_dram_size", 7, "dla_global_dram_size=7 is not supported: kiln has no DLA"),
    ("engine_capability", EngineCapability.SAFETY, "engine_capability=SAFETY is not supported"),
    ("engine_capability", "dla_standalone", "engine_capability=DLA_STANDALONE is not supported"),
    ("sparse_weights", True, "sparse_weights=True is not supported: kiln has no structured"),
    ("max_aux_streams", 2, "max_aux_streams=2 is not supported"),
    ("max_aux_streams", 0, "max_aux_streams=0 is not supported"),
    ("use_python_runtime", True, "use_python_runtime=True is not supported: kiln has one runtime"),
    ("tiling_optimization_level", "fast", "tiling_optimization_level='fast' is not supported"),
    ("tiling_optimization_level", "extreme", "tiling_optimization_level must be one of none, fast"),
    ("l2_limit_for_tiling", 1 << 20, "l2_limit_for_tiling=1048576 is not supported"),
    ("use_distributed_mode_trace", True, "use_distributed_mode_trace=True is not supported"),
])
def test_settings_kiln_cannot_honour(name, value, match):
    with pytest.raises(ValueError, match=match):
        resolve(**{name: value})


@pytest.mark.parametrize("name, value, error, match", [
    ("min_block_size", 0, ValueError, "min_block_size must be >= 1, found 0"),
    ("min_block_size", "5", TypeError, "min_block_size must be an int, found str"),
    ("min_block_size", True, TypeError, "min_block_size must be an int, found bool"),
    ("workspace_size", -1, ValueError, "workspace_size must be >= 0, found -1"),
    ("num_avg_timing_iters", 0, ValueError, "num_avg_timing_iters must be >= 1"),
    ("optimization_level", 6, ValueError, r"optimization_level must be in \[0, 5\], found 6"),
    ("optimization_level", -1, ValueError, r"optimization_level must be in \[0, 5\]"),
    ("optimization_level", 2.0, TypeError, "optimization_level must be an int"),
    ("engine_cache_size", -5, ValueError, "engine_cache_size must be >= 0"),
    ("hardware_compatible", 1, TypeError, "hardware_compatible must be True or False, found int"),
    ("use_fast_partitioner", "no", TypeError, "use_fast_partitioner must be True or False"),
    ("tiling_optimization_level", 3, TypeError, "tiling_optimization_level must be a str"),
    ("dryrun", 1, TypeError, "dryrun must be True, False or the path"),
    ("dryrun", "", TypeError, "dryrun must be True, False or the path"),
    ("custom_engine_cache", object(), TypeError, "custom_engine_cache must be an instance"),
    ("timing_cache_path", 5, TypeError, "timing_cache_path must be a non-empty path"),
    ("engine_cache_dir", None, TypeError, "engine_cache_dir must be a non-empty path"),
])
def test_types_and_ranges(name, value, error, match):
    with pytest.raises(error, match=match):
        resolve(**{name: value})


def test_valid_ranges_pass():
    settings, _, _, _ = resolve(min_block_size=1, workspace_size=1 << 30, num_avg_timing_iters=3,
                                optimization_level=0, engine_cache_size=0)
    assert (settings.min_block_size, settings.workspace_size, settings.optimization_level) == (
        1, 1 << 30, 0)
    assert resolve(optimization_level=5)[0].optimization_level == 5


def test_enabled_precisions_are_normalized():
    settings, _, _, _ = resolve(enabled_precisions={torch.half, "bf16", dtype.f32})
    assert settings.enabled_precisions == {dtype.f16, dtype.bf16, dtype.f32}
    settings, _, _, _ = resolve(enabled_precisions=(torch.float16,))
    assert settings.enabled_precisions == {dtype.f16}
    settings, _, _, _ = resolve(enabled_precisions=set())  # empty: the default, as in the seed
    assert settings.enabled_precisions == {dtype.f32}


def test_enabled_precisions_errors():
    with pytest.raises(ValueError, match="kiln has no kernels in int8; the supported precisions "
                                         "are bfloat16, float16, float32"):
        resolve(enabled_precisions={torch.float32, torch.int8})
    with pytest.raises(ValueError, match="kiln has no element type for torch.float8_e4m3fn"):
        resolve(enabled_precisions={torch.float8_e4m3fn})
    with pytest.raises(TypeError, match="enabled_precisions must be a set of dtypes"):
        resolve(enabled_precisions=torch.float16)
    with pytest.raises(TypeError, match="enabled_precisions must be a set"):
        resolve(enabled_precisions="fp16")


def test_dryrun_accepts_bool_and_paths(tmp_path):
    assert resolve(dryrun=True)[0].dryrun is True
    assert resolve(dryrun=str(tmp_path / "r.txt"))[0].dryrun == str(tmp_path / "r.txt")
    assert resolve(dryrun=tmp_path / "p.txt")[0].dryrun == str(tmp_path / "p.txt")


def test_torch_executed_ops_become_names():
    settings, _, _, _ = resolve(torch_executed_ops={torch.ops.aten.sort.default,
                                                    torch.ops.aten.add, "aten.mul.Tensor"})
    assert settings.torch_executed_ops == {"aten.sort.default", "aten.add", "aten.mul.Tensor"}
    assert resolve(torch_executed_ops=["aten.sort.default"])[0].torch_executed_ops == {
        "aten.sort.default"}
    with pytest.raises(TypeError, match="torch_executed_ops must be a collection of ops"):
        resolve(torch_executed_ops="aten.sort.default")
    with pytest.raises(TypeError, match="torch_executed_ops must be a collection"):
        resolve(torch_executed_ops=torch.ops.aten.sort.default)
    with pytest.raises(TypeError, match="torch_executed_ops item 0: expected an op .* found int"):
        resolve(torch_executed_ops=[5])
    with pytest.raises(ValueError, match="must not be empty"):
        resolve(torch_executed_ops=[" "])


def test_device_is_normalized():
    assert resolve(device="cuda:1")[0].device == Device("cuda:1")
    assert resolve(device=torch.device("cpu"))[0].device == Device("cpu")
    assert resolve(device=None)[0].device == Device._from(None)
    with pytest.raises(ValueError, match="kiln has no DLA support"):
        resolve(device="dla:0")


def test_engine_cache_selection(tmp_path, caplog):
    _, _, _, cache = resolve(cache_built_engines=True, engine_cache_dir=str(tmp_path / "c"),
                             engine_cache_size=1000)
    assert isinstance(cache, DiskEngineCache)
    assert cache.engine_cache_dir == str(tmp_path / "c") and cache.engine_cache_size == 1000
    assert not (tmp_path / "c").exists()  # made on the first save, not before
    _, _, _, cache = resolve(reuse_cached_engines=True)
    assert isinstance(cache, DiskEngineCache)
    custom = MemoryCache()
    assert resolve(reuse_cached_engines=True, custom_engine_cache=custom)[3] is custom
    with caplog.at_level(logging.WARNING, logger="kiln"):
        assert resolve(custom_engine_cache=custom)[3] is None
    assert "custom_engine_cache is given but neither" in caplog.text


def test_inputs_and_kwarg_inputs_are_prepared():
    x = torch.zeros(4, 8)
    spec = Input(min_shape=(1, 8), opt_shape=(4, 8), max_shape=(16, 8))
    _, args, kwargs, _ = resolve((x, spec), kwarg_inputs={"mask": torch.ones(4, dtype=torch.bool)})
    assert isinstance(args, list)
    assert args == [Input((4, 8)), spec]
    assert kwargs == {"mask": Input((4,), dtype=torch.bool)}
    _, args, kwargs, _ = resolve_settings({}, {}, inputs=None, arg_inputs=None,
                                          kwarg_inputs={"x": x}, stacklevel=1)
    assert args == [] and kwargs == {"x": Input((4, 8))}
    _, args, _, _ = resolve(x)  # one tensor, not in a list, as the seed allows
    assert args == [Input((4, 8))]
    _, args, _, _ = resolve(arg_inputs=[x])
    assert args == [Input((4, 8))]
    with pytest.raises(TypeError, match=r"arg_inputs\[1\]: expected a torch.Tensor .* found int"):
        resolve(arg_inputs=[x, 3])
    with pytest.raises(TypeError, match="kwarg_inputs must be a dict"):
        resolve(kwarg_inputs=[x])


def test_settings_digest_fields():
    base, _, _, _ = resolve()
    fields = settings_digest_fields(base)
    assert set(fields) >= {"enabled_precisions", "use_explicit_typing", "use_fp32_acc",
                           "disable_tf32", "optimization_level", "workspace_size",
                           "hardware_compatible", "truncate_double", "refittable",
                           "strip_engine_weights", "target", "num_avg_timing_iters"}
    assert fields["enabled_precisions"] == ["float32"]
    assert fields["refittable"] is False
    assert fields["target"] == ("cpu" if not base.device.is_cuda else fields["target"])
    fp16 = settings_digest_fields(resolve(enabled_precisions={torch.float16, torch.float32})[0])
    assert fp16["enabled_precisions"] == ["float16", "float32"]
    assert settings_digest_fields(resolve(target="sm_90")[0])["target"] == "sm_90"
    mutable = settings_digest_fields(resolve(immutable_weights=False)[0])
    assert mutable["refittable"] is True
    # min_block_size shapes the subgraph, which the key hashes itself, not the engine settings.
    assert settings_digest_fields(resolve(min_block_size=1)[0]) == fields
    import json
    json.dumps(fields)  # plain values only


# --- dtype, EngineCapability, DeviceType ---------------------------------------------------------

@pytest.mark.parametrize("torch_dtype, kiln_dtype", [
    (torch.float32, dtype.f32), (torch.float16, dtype.f16), (torch.bfloat16, dtype.bf16),
    (torch.float64, dtype.f64), (torch.int64, dtype.i64), (torch.int32, dtype.i32),
    (torch.int16, dtype.i16), (torch.int8, dtype.i8), (torch.uint8, dtype.u8),
    (torch.bool, dtype.b),
])
def test_dtype_round_trips_torch(torch_dtype, kiln_dtype):
    assert dtype._from(torch_dtype) is kiln_dtype
    assert kiln_dtype.to(torch.dtype) is torch_dtype
    assert dtype._from(kiln_dtype) is kiln_dtype
    assert dtype._from(kiln_dtype.to(str)) is kiln_dtype


@pytest.mark.parametrize("name, expected", [
    ("fp16", dtype.f16), ("half", dtype.f16), ("float16", dtype.f16), ("torch.float16", dtype.f16),
    ("FP32", dtype.f32), ("float", dtype.f32), ("bf16", dtype.bf16), ("double", dtype.f64),
    ("long", dtype.i64), ("int", dtype.i32), ("u8", dtype.u8), ("bool", dtype.b),
])
def test_dtype_from_names(name, expected):
    assert dtype._from(name) is expected


def test_dtype_from_numpy_and_aliases():
    assert dtype._from(np.float16) is dtype.f16
    assert dtype._from(np.dtype("int64")) is dtype.i64
    assert dtype._from(np.bool_) is dtype.b
    assert dtype.f16.to(np.dtype) == np.dtype("float16")
    assert dtype.half is dtype.f16 and dtype.float32 is dtype.f32
    assert str(dtype.bf16) == "bfloat16" and dtype.bf16.itemsize == 2


def test_dtype_errors():
    with pytest.raises(ValueError, match="unknown dtype name 'fp8'"):
        dtype._from("fp8")
    with pytest.raises(ValueError, match="kiln has no element type for torch.complex128"):
        dtype._from(torch.complex128)
    with pytest.raises(ValueError, match="kiln has no element type for NumPy's complex128"):
        dtype._from(np.complex128)
    with pytest.raises(TypeError, match=r"cannot make a kiln dtype from 3.5 \(of type float\)"):
        dtype._from(3.5)
    with pytest.raises(TypeError, match="cannot make a kiln dtype"):
        dtype._from(int)
    with pytest.raises(TypeError, match="NumPy has no bfloat16"):
        dtype.bf16.to(np.dtype)
    with pytest.raises(TypeError, match="dtype.to: expected torch.dtype"):
        dtype.f32.to(float)


def test_engine_capability_from():
    assert EngineCapability._from(EngineCapability.SAFETY) is EngineCapability.SAFETY
    assert EngineCapability._from("standard") is EngineCapability.STANDARD
    assert EngineCapability._from("default") is EngineCapability.STANDARD
    assert EngineCapability._from("DLA_STANDALONE") is EngineCapability.DLA_STANDALONE
    assert EngineCapability._from(1) is EngineCapability.SAFETY
    with pytest.raises(ValueError, match="unknown engine capability 'fastest'"):
        EngineCapability._from("fastest")
    with pytest.raises(ValueError, match="unknown engine capability 7"):
        EngineCapability._from(7)
    with pytest.raises(TypeError, match="cannot make an EngineCapability from 1.5"):
        EngineCapability._from(1.5)


def test_device_type_from():
    assert DeviceType._from("gpu") is DeviceType.GPU is DeviceType.CUDA
    assert DeviceType._from(torch.device("cpu")) is DeviceType.CPU
    assert DeviceType._from("DLA") is DeviceType.DLA
    with pytest.raises(ValueError, match="unknown device type 'tpu'"):
        DeviceType._from("tpu")
    with pytest.raises(TypeError, match="cannot make a DeviceType"):
        DeviceType._from(3)


# --- Device --------------------------------------------------------------------------------------

def test_device_parsing():
    d = Device("cuda:1")
    assert (d.device_type, d.gpu_id, d.dla_core, d.allow_gpu_fallback) == (DeviceType.GPU, 1, -1,
                                                                            False)
    assert str(d) == "cuda:1" and repr(d) == "kiln.Device('cuda:1')"
    assert d.to_torch_device() == torch.device("cuda", 1)
    assert Device("gpu:2") == Device(gpu_id=2) == Device(device_type="cuda", gpu_id=2)
    assert Device(torch.device("cuda", 3)).gpu_id == 3
    cpu = Device("cpu")
    assert (cpu.device_type, cpu.gpu_id, str(cpu)) == (DeviceType.CPU, -1, "cpu")
    assert cpu.to_torch_device() == torch.device("cpu")
    assert Device(torch.device("cpu")) == cpu == Device(device_type=DeviceType.CPU)
    assert Device(" CUDA : 0 ") == Device(gpu_id=0)
    assert Device(d) == d and Device("cuda:1", allow_gpu_fallback=True).allow_gpu_fallback
    assert len({Device("cuda:0"), Device(gpu_id=0), Device("cpu")}) == 2
    assert Device("cpu") != "cpu"


def test_device_cuda_without_index_is_the_current_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert Device("cuda").gpu_id == 3
    assert Device(torch.device("cuda")).gpu_id == 3
    assert Device._from(None) == Device("cuda:3")


def test_device_from():
    assert Device._from("cpu") == Device("cpu")
    assert Device._from({"gpu_id": 1}) == Device("cuda:1")
    d = Device("cuda:0")
    assert Device._from(d) is d
    if not torch.cuda.is_available():
        assert Device._from(None) == Device("cpu")
    with pytest.raises(TypeError, match="Device: expected a str, torch.device or kiln.Device, "
                                        "found int"):
        Device._from(3)


@pytest.mark.parametrize("make, error, match", [
    (lambda: Device("dla:0"), ValueError, "kiln has no DLA support"),
    (lambda: Device(dla_core=0), ValueError, "kiln has no DLA support"),
    (lambda: Device(device_type="dla", gpu_id=0), ValueError, "kiln has no DLA support"),
    (lambda: Device("tpu:0"), ValueError, "Device: cannot parse 'tpu:0'"),
    (lambda: Device("cuda:x"), ValueError, "cannot parse 'cuda:x'"),
    (lambda: Device("cpu:1"), ValueError, "the cpu takes no index"),
    (lambda: Device(torch.device("meta")), ValueError, "found a 'meta' device"),
    (lambda: Device(), ValueError, "expected a device spec"),
    (lambda: Device("cuda", gpu_id=1), ValueError, "not both"),
    (lambda: Device(gpu_id=-1), ValueError, "gpu_id must be >= 0"),
    (lambda: Device(gpu_id="0"), TypeError, "gpu_id must be an int, found str"),
    (lambda: Device(device_type="cpu", gpu_id=1), ValueError, "the cpu has no gpu_id"),
    (lambda: Device("cuda", allow_gpu_fallback=1), TypeError, "allow_gpu_fallback must be"),
    (lambda: Device(3.0), TypeError, "found float"),
])
def test_device_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- Input -------------------------------------------------------------------------------------

def test_static_input():
    for shape in ((1, 3, 224, 224), [1, 3, 224, 224], torch.Size([1, 3, 224, 224])):
        i = Input(shape)
        assert i.shape == (1, 3, 224, 224) and i.shape_mode is Input.STATIC
        assert not i.is_dynamic()
        assert i.min_shape == i.opt_shape == i.max_shape == (1, 3, 224, 224)
        assert i.dtype is dtype.f32 and i.format == "contiguous" and i.name is None
    assert Input(shape=(2, np.int64(3))).shape == (2, 3)
    assert Input(()).shape == ()  # a 0-d input
    assert Input((0, 4)).shape == (0, 4)  # an empty tensor is a valid input


def test_dynamic_input():
    i = Input(min_shape=(1, 3), opt_shape=(8, 3), max_shape=(32, 3), dtype=torch.float16,
              name="x")
    assert i.is_dynamic() and i.shape_mode is Input.DYNAMIC
    assert i.shape == {"min_shape": (1, 3), "opt_shape": (8, 3), "max_shape": (32, 3)}
    assert i.to_spec() == {"name": "x", "min": [1, 3], "opt": [8, 3], "max": [32, 3],
                           "dtype": "float16", "format": "contiguous"}
    assert i.torch_dtype is torch.float16
    assert "min_shape=(1, 3)" in repr(i)


def test_input_dtype_and_format():
    assert Input((1,), dtype="int32").dtype is dtype.i32
    assert Input((1,), dtype=dtype.bf16).dtype is dtype.bf16
    assert Input((1,), dtype=torch.int64).to_spec()["dtype"] == "int64"
    i = Input((1, 3, 8, 8), format=torch.channels_last)
    assert i.format == "channels_last" and i.to_spec()["format"] == "channels_last"
    assert Input((1, 3, 4, 8, 8), format=torch.channels_last_3d).format == "channels_last_3d"
    assert Input((2, 2), format=torch.contiguous_format).format == "contiguous"


@pytest.mark.parametrize("make, error, match", [
    (lambda: Input(min_shape=(1, 3), max_shape=(4, 3)), ValueError, "missing opt_shape"),
    (lambda: Input(min_shape=(1,), opt_shape=(2, 3), max_shape=(4, 3)), ValueError,
     "same rank"),
    (lambda: Input(min_shape=(4, 3), opt_shape=(2, 3), max_shape=(8, 3)), ValueError,
     "dim 0 must satisfy min <= opt <= max, found min 4, opt 2, max 8"),
    (lambda: Input(min_shape=(1, 3), opt_shape=(2, 5), max_shape=(8, 4)), ValueError,
     "dim 1 must satisfy"),
    (lambda: Input((1, -3)), ValueError, r"shape\[1\] must be >= 0, found -3"),
    (lambda: Input((1, 2.5)), TypeError, r"shape\[1\] must be an int, found float"),
    (lambda: Input((True, 2)), TypeError, r"shape\[0\] must be an int, found bool"),
    (lambda: Input(5), TypeError, "shape must be a sequence of ints"),
    (lambda: Input("1,2"), TypeError, "shape must be a sequence of ints"),
    (lambda: Input((1, 2), min_shape=(1, 2)), ValueError, "not both"),
    (lambda: Input(), ValueError, "expected a shape"),
    (lambda: Input((1,), (2,)), TypeError, "at most one positional argument"),
    (lambda: Input((1,), shape=(1,)), TypeError, "both positionally and as shape="),
    (lambda: Input((1, 3, 8), format=torch.channels_last), ValueError,
     "format channels_last needs a 4-D shape, found 3-D"),
    (lambda: Input((1, 2), format=torch.preserve_format), ValueError, "unsupported format"),
    (lambda: Input((1, 2), format=3), TypeError, "format must be"),
    (lambda: Input((1, 2), name=3), TypeError, "name must be a str"),
    (lambda: Input((1, 2), dtype=torch.complex128), ValueError, "no element type"),
])
def test_input_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_input_from_tensor():
    t = torch.zeros(2, 3, dtype=torch.int8)
    i = Input.from_tensor(t)
    assert (i.shape, i.dtype, i.format, i.is_dynamic()) == ((2, 3), dtype.i8, "contiguous", False)
    cl = Input.from_tensor(torch.zeros(1, 3, 4, 4).contiguous(memory_format=torch.channels_last))
    assert cl.format == "channels_last"
    assert Input.from_tensor(torch.zeros(1, 1, 4, 4)).format == "contiguous"  # ambiguous: default
    assert Input.from_tensor(t, name="w").name == "w"
    with pytest.raises(TypeError, match="expected a torch.Tensor, found list"):
        Input.from_tensor([1, 2])


def test_input_example_tensor():
    i = Input(min_shape=(1, 3, 4, 4), opt_shape=(2, 3, 4, 4), max_shape=(8, 3, 4, 4),
              dtype=torch.float16, format=torch.channels_last)
    t = i.example_tensor()
    assert t.shape == (2, 3, 4, 4) and t.dtype == torch.float16
    assert t.is_contiguous(memory_format=torch.channels_last)
    assert i.example_tensor("min_shape").shape == (1, 3, 4, 4)
    assert i.example_tensor(optimization_profile_field="max_shape").shape == (8, 3, 4, 4)
    assert Input((5,), dtype=torch.bool).example_tensor().dtype == torch.bool
    with pytest.raises(ValueError, match="optimization_profile_field must be one of"):
        i.example_tensor("best_shape")


def test_prepare_inputs_keeps_structure():
    Pair = collections.namedtuple("Pair", "a b")
    a = torch.zeros(2, dtype=torch.float16)
    spec = Input((3,))
    tree = [a, (spec, {"k": a, "none": None}), Pair(a, spec)]
    out = prepare_inputs(tree)
    assert isinstance(out, list) and isinstance(out[1], tuple) and isinstance(out[2], Pair)
    assert out[0] == Input((2,), dtype=torch.float16)
    assert out[1][0] is spec
    assert out[1][1] == {"k": Input((2,), dtype=torch.float16), "none": None}
    assert out[2].b is spec
    assert prepare_inputs({"x": a}) == {"x": Input((2,), dtype=torch.float16)}


def test_prepare_inputs_errors_name_the_position():
    with pytest.raises(TypeError, match=r"inputs\[1\]\['mask'\]: expected a torch.Tensor or "
                                        r"kiln.Input .* found int"):
        prepare_inputs([torch.zeros(1), {"mask": 3}])
    with pytest.raises(TypeError, match=r"inputs\[0\]: .* found str"):
        prepare_inputs(["x"])
    with pytest.raises(TypeError, match="keys must be argument names"):
        prepare_inputs({1: torch.zeros(1)})
    with pytest.raises(TypeError, match=r"kw\['a'\]\[0\]"):
        prepare_inputs({"a": [np.zeros(2)]}, "kw")


def test_settings_are_plain_pathlike_strings(tmp_path):
    settings, _, _, _ = resolve(timing_cache_path=pathlib.Path(tmp_path / "t.bin"),
                                engine_cache_dir=tmp_path)
    assert settings.timing_cache_path == str(tmp_path / "t.bin")
    assert settings.engine_cache_dir == str(tmp_path)
