"""The CPU back-end: the .bnn model format (pack), the C runtime's sources, its ctypes binding and the
`run --target cpu|aarch64|armv7|armv6` back-end module (run). See docs/bnn-format.md and runtime/."""
