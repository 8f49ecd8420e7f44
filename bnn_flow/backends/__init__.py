"""The back-ends: every target that runs a compiled build (bnn_flow/backends/registry.py lists them).

A back-end implements the small protocol of backends/base.py. Its folder holds everything about it; no
module outside it names the target, except the registry. docs/architecture.md says how to add one.
"""
