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


class DataLossError(KilnError):
    """The bytes are corrupt or truncated (an archive, an engine, a cache entry)."""


class KilnIOError(KilnError, OSError):
    """The operating system refused an operation (open, read, write)."""


class FailedPreconditionError(KilnError):
    """The call is valid but not in the current state."""


class InternalError(KilnError):
    """A bug in kiln; please report it with the message."""
