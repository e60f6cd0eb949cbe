"""The compiler under the seed's module name: ``kiln.dynamo`` mirrors ``torch_tensorrt.dynamo``
(compile, compile_module, convert_exported_program_to_serialized_engine, cross_compile, save,
load, Input, Device, dtype, CompilationSettings, the engine caches), so code written for one reads
the same with the other."""
from kiln._compiler import (compile, compile_module, convert_exported_program_to_serialized_engine,
                            cross_compile, cross_compile_for_windows, load,
                            load_cross_compiled_exported_program, save,
                            save_cross_compiled_exported_program)
from kiln._device import Device
from kiln._engine_cache import BaseEngineCache, DiskEngineCache
from kiln._enums import EngineCapability, dtype
from kiln._input import Input
from kiln._settings import CompilationSettings

__all__ = [
    "compile", "compile_module", "convert_exported_program_to_serialized_engine", "cross_compile",
    "cross_compile_for_windows", "save", "load", "save_cross_compiled_exported_program",
    "load_cross_compiled_exported_program", "Input", "Device", "dtype", "EngineCapability",
    "CompilationSettings", "BaseEngineCache", "DiskEngineCache",
]
