"""Nonuniform n-bit activation quantizers (Sun, Lin and Wang, arXiv 1607.02720): ENQ and KNQ.

Both quantize the ReLU domain to 2^n levels q = scale * table[i], i the n-bit index that the hardware streams
carry. Level 0 is exactly 0 (most ReLU outputs are 0, and zero padding stays exact); the other levels sit on an
integer grid (table: strictly increasing integers), so the next layer's dot product stays integer and the compiler
keeps it bit-exact. A value goes to its nearest level: i = #{k : x >= (level[k-1] + level[k]) / 2} (ties up).

- ENQ, equal distance in the log domain: the nonzero levels are one octave apart, 1, 2, 4, ... 2^(2^n - 2) grid
  steps (n = 2: {0, 1, 2, 4}; n = 3: up to 64), capped at 255 (n = 4: geometric from 1 to 255, rounded); the
  top level follows a running 99th percentile of the layer's activations.
- KNQ: the levels are k-means centres of the layer's activations (level 0 pinned), refreshed at every training
  step by one mini-batch Lloyd step (moving average), then rounded to a grid of 2^(n+2) - 1 steps below the top.

Export (QONNX, TorchScript exporter): MultiThreshold(x, thresholds (1, 2^n - 1)) -> Cast(int64) -> Gather(table)
-> Mul(scale); docs/architecture.md ("Nonuniform activations") says how the compiler reads it.
"""

from __future__ import annotations

import torch
from torch import nn

METHODS = ("enq", "knq")
MOMENTUM = 0.1  # running statistics (ENQ's top level, KNQ's centres) move this far per training step
SAMPLE = 16384  # activations sampled per step for the statistics
QONNX_DOMAIN = "qonnx.custom_op.general"


def enq_table(bits: int) -> list[int]:
    """ENQ's integer levels: 0, then geometric from 1 with ratio 2 (capped so the top fits 8 bits)."""
    steps = (1 << bits) - 2
    top = min(1 << steps, 255)
    table = [0]
    for k in range(steps + 1):
        table.append(max(round(top ** (k / steps)), table[-1] + 1))
    return table


def snap_to_grid(centres: torch.Tensor, grid_bits: int) -> tuple[list[int], float]:
    """Sorted float levels (level 0 = 0) as strictly increasing integers on a grid whose top step is
    2^grid_bits - 1, and the grid's scale."""
    top = max(float(centres.max()), 1e-6)
    scale = top / ((1 << grid_bits) - 1)
    table = [0]
    for c in centres[1:].tolist():
        table.append(max(round(c / scale), table[-1] + 1))
    return table, scale


class _ExportableQuant(torch.autograd.Function):
    """q = scale * table[#{k : x >= thresholds[k]}]; exported as MultiThreshold -> Cast -> Gather -> Mul."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, thresholds: tuple[float, ...], table: tuple[int, ...],  # noqa: ANN001
                scale: float) -> torch.Tensor:
        t = torch.tensor(thresholds, dtype=x.dtype, device=x.device)
        levels = scale * torch.tensor(table, dtype=x.dtype, device=x.device)
        return levels[torch.bucketize(x.contiguous(), t, right=True)]

    @staticmethod
    def symbolic(g, x, thresholds, table, scale):  # noqa: ANN001, ANN205 - torch.onnx's graph-building API
        t = g.op("Constant", value_t=torch.tensor([thresholds], dtype=torch.float32))
        index = g.op(f"{QONNX_DOMAIN}::MultiThreshold", x, t, out_dtype_s=f"UINT{(len(table) - 1).bit_length()}",
                     out_scale_f=1.0, out_bias_f=0.0, data_layout_s="NCHW")
        index = g.op("Cast", index, to_i=7)  # int64: Gather's indices
        levels = g.op("Constant", value_t=torch.tensor(table, dtype=torch.float32))
        value = g.op("Gather", levels, index, axis_i=0)
        return g.op("Mul", value, g.op("Constant", value_t=torch.tensor(scale, dtype=torch.float32)))


class NonuniformActQuant(nn.Module):
    """An n-bit nonuniform activation quantizer (ENQ or KNQ) in the ReLU domain; see the module docstring."""

    def __init__(self, bits: int, method: str) -> None:
        super().__init__()
        if method not in METHODS or bits not in (2, 3, 4):
            raise ValueError(f"nonuniform activations: method {method!r} at {bits} bits (use enq|knq, 2..4 bits)")
        self.bits, self.method = bits, method
        self.grid_bits = bits + 2
        m = 1 << bits
        self.register_buffer("top", torch.tensor(2.0))  # ENQ: the running top level
        self.register_buffer("centres", torch.linspace(0.0, 2.0, m))  # KNQ: the running k-means centres
        self.register_buffer("table", torch.tensor(enq_table(bits) if method == "enq" else list(range(m))))
        self.register_buffer("scale", torch.tensor(2.0 / self.table[-1].item()))
        self._refresh()

    @property
    def levels(self) -> torch.Tensor:
        return self.scale * self.table.to(self.scale.dtype)

    def _refresh(self) -> None:
        """Table and scale from the running statistics."""
        if self.method == "enq":
            table, scale = enq_table(self.bits), float(self.top) / enq_table(self.bits)[-1]
        else:
            table, scale = snap_to_grid(self.centres, self.grid_bits)
        self.table.copy_(torch.tensor(table))
        self.scale.fill_(scale)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        flat = x.reshape(-1)
        if flat.numel() > SAMPLE:
            flat = flat[torch.randint(flat.numel(), (SAMPLE,), device=flat.device)]
        flat = flat.float().clamp(min=0)
        if self.method == "enq":
            self.top.lerp_(torch.quantile(flat, 0.99).clamp(min=1e-3), MOMENTUM)
        else:
            c = self.centres
            nearest = torch.bucketize(flat, (c[1:] + c[:-1]) / 2, right=True)
            sums = torch.zeros_like(c).index_add_(0, nearest, flat)
            counts = torch.zeros_like(c).index_add_(0, nearest, torch.ones_like(flat))
            target = torch.where(counts > 0, sums / counts.clamp(min=1), c)
            target[0] = 0.0  # level 0 stays exactly 0
            self.centres.copy_(torch.sort(c.lerp(target, MOMENTUM)).values)
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._observe(x.detach())
        levels = self.levels.tolist()
        thresholds = tuple((a + b) / 2 for a, b in zip(levels, levels[1:], strict=False))
        q = _ExportableQuant.apply(x, thresholds, tuple(int(v) for v in self.table.tolist()), float(self.scale))
        if not self.training:
            return q
        clipped = x.clamp(0.0, levels[-1])  # straight-through estimator, clipped to the levels' range
        return clipped + (q - clipped).detach()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, method={self.method}, table={self.table.tolist()}, scale={float(self.scale):.4g}"

