"""kiln: turns PyTorch programs (torch.export) into fast inference engines.

This release reads ``torch.export`` programs in C++ and runs them on kiln's reference CPU backend:

    ep = torch.export.export(model, (x,))
    program = kiln.Program.from_exported_program(ep.run_decompositions())
    y = program(x)
"""
from kiln import errors
from kiln._C import __version__
from kiln.errors import (DataLossError, FailedPreconditionError, InternalError, InvalidArgumentError,
                         KilnError, KilnIOError, NotFoundError, OutOfRangeError, UnsupportedError)
from kiln.program import Program, load

__all__ = [
    "Program", "load", "errors", "KilnError", "InvalidArgumentError", "NotFoundError",
    "OutOfRangeError", "UnsupportedError", "DataLossError", "KilnIOError",
    "FailedPreconditionError", "InternalError", "__version__",
]
