"""`python -m bnn_flow ...` (also what `torchrun --nproc_per_node N -m bnn_flow train ...` runs)."""

import sys

from bnn_flow.cli import main

sys.exit(main())
