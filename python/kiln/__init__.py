"""kiln: turns PyTorch programs (torch.export) into fast inference engines.

    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x])                # supported parts run as kiln engines
    y = compiled(x)
    kiln.save(compiled, "model.pt2"); kiln.load("model.pt2").module()(x)

    engine = kiln.convert_exported_program_to_serialized_engine(ep, inputs=[x])  # one engine's bytes

``kiln.Program`` runs a whole program on the reference CPU backend (no partitioning). The compiler
API keeps the contract of ``torch_tensorrt.dynamo`` (also importable as ``kiln.dynamo``).
"""
from kiln import errors
from kiln._C import __version__
from kiln.errors import (DataLossError, FailedPreconditionError, InternalError, InvalidArgumentError,
                         KilnError, KilnIOError, LoweringError, NotFoundError, OutOfRangeError,
                         UnsupportedError)
from kiln.program import Program, load_program
from kiln._engine_module import KilnEngineModule
from kiln import dynamo
from kiln.dynamo import *  # noqa: F401,F403 - the compiler API, under the seed's names


def _default_timing_cache() -> None:
    """Engines loaded without kiln.compile (kiln.load) find the algorithms that kiln.compile's
    default timing cache holds; KILN_TIMING_CACHE, when set, wins."""
    import os
    from kiln import _C, _defaults
    if not os.environ.get("KILN_TIMING_CACHE"):
        _C.set_timing_cache_path(_defaults.TIMING_CACHE_PATH)


_default_timing_cache()

__all__ = dynamo.__all__ + [
    "KilnEngineModule", "Program", "load_program", "dynamo", "errors", "KilnError",
    "InvalidArgumentError", "NotFoundError", "OutOfRangeError", "UnsupportedError", "DataLossError",
    "KilnIOError", "FailedPreconditionError", "InternalError", "LoweringError", "__version__",
]
