"""bnn-flow: a compiler flow for binarized neural networks.

Brevitas quantization-aware training -> QONNX -> integer XNOR-popcount dataflow graph ->
FPGA dataflow (HLS) and Raspberry Pi CPUs, with one golden model that every target must match bit for bit.
"""

__version__ = "0.1.0"

import os as _os

# Torch's OpenMP threads spin while waiting by default; on a small machine shared with other work
# (2 cores, CI beside a build) that spinning made training 2-3x slower than one thread. Passive
# waiting costs nothing measurable on an idle machine. Must be set before torch loads libgomp.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import warnings as _warnings

# brevitas warns at import about an optional CUDA kernel package that CPU users never need.
_warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
