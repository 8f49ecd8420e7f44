"""The error types that the command line turns into one line on stderr and an exit code (DESIGN.md §7).

Raise these (never print-and-exit) anywhere in the package; `bnn_flow.cli` catches them at the top.
Each message says what was wrong, with which input, and what to do about it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a check ran and failed (mismatch, accuracy below a goal, failed round trip)
EXIT_BAD_INPUT = 2  # bad input or usage: missing/corrupt file, bad recipe, unsupported graph
EXIT_MISSING_TOOL = 3  # an external tool (vitis_hls, vivado, qemu, ...) is not installed
EXIT_INTERNAL = 70  # a bug in bnn-flow itself (EX_SOFTWARE); rerun with --debug for the traceback


class BnnFlowError(Exception):
    """Base class: an expected failure with a one-line, actionable message."""

    exit_code = EXIT_BAD_INPUT


class BadInputError(BnnFlowError):
    """The user's input (file, recipe, option, graph) cannot be used as given."""

    exit_code = EXIT_BAD_INPUT


class DataNotFoundError(BadInputError):
    """A data set is not on disk and could not be downloaded."""


class CheckFailedError(BnnFlowError):
    """A verification ran to completion and found a mismatch."""

    exit_code = EXIT_CHECK_FAILED


class MissingToolError(BnnFlowError):
    """An external program that this step needs is not installed."""

    exit_code = EXIT_MISSING_TOOL
