"""kiln's exceptions. Each carries the C++ core's message, which names what was expected and found.

Every error derives from KilnError, and also from the built-in exception a Python user would
expect (a bad input is a ValueError, an unsupported op a NotImplementedError).
"""


class KilnError(RuntimeError):
    """Base class of every error kiln raises."""


class InvalidArgumentError(KilnError, ValueError):
    """An input, argument or option is malformed (wrong dtype, shape, count)."""


class NotFoundError(KilnError, LookupError):
    """A named thing (file, archive entry, input) does not exist."""


class OutOfRangeError(KilnError, ValueError):
    """A value lies outside its declared range, e.g. a dynamic dim outside its min/max."""


class UnsupportedError(KilnError, NotImplementedError):
    """Well-formed, but kiln does not handle it (yet): an unknown op, an old archive format."""


class LoweringError(KilnError):
    """torch's own machinery that kiln runs on the program (``run_decompositions``,
    ``torch.export.save``) failed on it, for no cause kiln can name; torch's exception is chained
    as ``__cause__``."""


class DataLossError(KilnError):
    """The bytes are corrupt or truncated (an archive, an engine, a cache entry)."""


class KilnIOError(KilnError, OSError):
    """The operating system refused an operation (open, read, write)."""


class FailedPreconditionError(KilnError):
    """The call is valid but not in the current state."""


class InternalError(KilnError):
    """A bug in kiln; please report it with the message."""


# --- messages ---------------------------------------------------------------------------------

def unsupported_ops_message(header: str, unsupported: list[dict]) -> str:
    """``header``, then a line "op (N nodes: a, b): reason" per entry of ``unsupported``
    ({"op", "reason", "nodes"}): the form of the C++ core's list (src/partition/partition.cc),
    so that one reading of kiln's messages fits every list of unsupported ops."""
    lines = [header]
    for entry in unsupported:
        nodes = entry["nodes"]
        shown = ", ".join(nodes[:5]) + (f", ... ({len(nodes) - 5} more)" if len(nodes) > 5 else "")
        lines.append(f"  {entry['op']} ({len(nodes)} {'node' if len(nodes) == 1 else 'nodes'}: "
                     f"{shown}): {entry['reason']}")
    return "\n".join(lines)


def full_compilation_message(unsupported: list[dict]) -> str:
    """require_full_compilation's message for these unsupported ops, as the C++ core words it."""
    count = sum(len(entry["nodes"]) for entry in unsupported)
    header = (f"require_full_compilation=True, but {count} "
              f"{'op is' if count == 1 else 'ops are'} not supported by kiln:")
    return unsupported_ops_message(header, unsupported)
