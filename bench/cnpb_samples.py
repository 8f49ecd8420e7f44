"""Write docs/cnpb-synth-samples.png: a labelled grid of CNPB-synth samples (synthetic stand-in for CNPB)."""

from __future__ import annotations

from pathlib import Path

from bnn_flow.data.cnpb import render_sample_grid

if __name__ == "__main__":
    out = render_sample_grid(Path(__file__).resolve().parents[1] / "docs" / "cnpb-synth-samples.png")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
