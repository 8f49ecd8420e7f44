"""Text from a model or a BUILD folder on its way into generated code (C++, Verilog, Tcl, shell).

Models, BUILD folders and board files may be hostile: a layer name is text the user controls. It reaches
generated sources only through these functions: as an identifier (letters, digits, underscores), as comment
text (a safe subset of printable ASCII, no line breaks), or as a Tcl/shell word validated against a strict
pattern (refused with one line naming where it came from, never escaped into something that still runs).
"""

from __future__ import annotations

import re

from bnn_flow.errors import BadInputError

_NOT_IDENT = re.compile(r"[^0-9A-Za-z_]")
_NOT_COMMENT = re.compile(r"[^0-9A-Za-z_ .,:=+\-]")
_WORD = re.compile(r"[0-9A-Za-z_./:+\-]+")
MAX_LEN = 64


def identifier(name: str, prefix: str) -> str:
    """A C/C++/Verilog identifier made of `prefix` (which makes it unique and non-empty) and the name's
    letters, digits and underscores (anything else becomes an underscore)."""
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*", prefix):
        raise ValueError(f"bad identifier prefix {prefix!r}")
    return prefix + _NOT_IDENT.sub("_", str(name))[:MAX_LEN]


def comment(text: str) -> str:
    """Text safe inside a // or /* */ comment of any generated language: one line, no comment delimiters,
    no backslash (a line continuation), at most MAX_LEN characters."""
    return _NOT_COMMENT.sub("_", str(text))[:MAX_LEN]


def word(value: object, what: str) -> str:
    """`value` as one Tcl / shell word (part names, file names, paths): letters, digits and _ . / : + -
    only. Anything else is refused, naming `what` (where the value came from)."""
    text = str(value)
    if not _WORD.fullmatch(text):
        raise BadInputError(f"{what} {text!r} has characters that are not allowed in generated scripts "
                            "(letters, digits and _ . / : + - only): fix it")
    return text
