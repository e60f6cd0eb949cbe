"""Default value of every compile() setting.

The names and values follow the contract of ``torch_tensorrt.dynamo._defaults`` so that code written
for it reads the same here; the cache paths point at kiln's own directory. Settings that cannot mean
anything for kiln (the DLA sizes, ``engine_capability`` other than STANDARD, ...) keep their
defaults here: compile() accepts them at these values and rejects any other (see ``_settings``).
"""
from __future__ import annotations

import os
import tempfile

from kiln._enums import EngineCapability, dtype

DEVICE = None  # the current CUDA device, or the cpu where there is none (kiln.Device._from(None))
DISABLE_TF32 = False
ASSUME_DYNAMIC_SHAPE_SUPPORT = False
SPARSE_WEIGHTS = False
ENABLED_PRECISIONS = frozenset({dtype.f32})
ENGINE_CAPABILITY = EngineCapability.STANDARD
NUM_AVG_TIMING_ITERS = 1
WORKSPACE_SIZE = 0
DLA_SRAM_SIZE = 1048576
DLA_LOCAL_DRAM_SIZE = 1073741824
DLA_GLOBAL_DRAM_SIZE = 536870912
TRUNCATE_DOUBLE = False
REQUIRE_FULL_COMPILATION = False
MIN_BLOCK_SIZE = 5
PASS_THROUGH_BUILD_FAILURES = False
MAX_AUX_STREAMS = None
VERSION_COMPATIBLE = False
OPTIMIZATION_LEVEL = None
USE_PYTHON_RUNTIME = False
USE_FAST_PARTITIONER = True
ENABLE_EXPERIMENTAL_DECOMPOSITIONS = False
DRYRUN = False
HARDWARE_COMPATIBLE = False
ENGINE_CACHE_DIR = os.path.join(tempfile.gettempdir(), "kiln_engine_cache")
TIMING_CACHE_PATH = os.path.join(ENGINE_CACHE_DIR, "timing_cache.bin")
LAZY_ENGINE_INIT = False
CACHE_BUILT_ENGINES = False
REUSE_CACHED_ENGINES = False
ENGINE_CACHE_SIZE = 5368709120  # 5 GiB
CUSTOM_ENGINE_CACHE = None
USE_EXPLICIT_TYPING = False
USE_FP32_ACC = False
REFIT_IDENTICAL_ENGINE_WEIGHTS = False
STRIP_ENGINE_WEIGHTS = False
IMMUTABLE_WEIGHTS = True
ENABLE_WEIGHT_STREAMING = False
ENABLE_CROSS_COMPILE_FOR_WINDOWS = False
TILING_OPTIMIZATION_LEVEL = "none"
L2_LIMIT_FOR_TILING = -1
OFFLOAD_MODULE_TO_CPU = False
USE_DISTRIBUTED_MODE_TRACE = False

# kiln's own: the GPU architecture to build for ("sm_90"); None builds for the device in use.
TARGET = None

# The precisions kiln's kernels come in; enabled_precisions must be a subset.
SUPPORTED_KERNEL_PRECISIONS = frozenset({dtype.f32, dtype.f16, dtype.bf16})
TILING_OPTIMIZATION_LEVELS = ("none", "fast", "moderate", "full")
MAX_OPTIMIZATION_LEVEL = 5
