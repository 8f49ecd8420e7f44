"""PYNQ driver for a bnn-flow overlay: load bnn.bit/.hwh, stream frames through the AXI DMA, unpack the scores.

Runs on the board with PYNQ's Python (numpy + pynq); bnn-flow itself is not needed there. The folder holds
bnn.bit, bnn.hwh, overlay.json (stream layouts, cell names; written by `bnn-flow bitstream`), head.json
(the classifier head) and this file with packing.py.

    python3 driver.py --input q.npy --output result.npz [--expect acc.npy]

q.npy: int64 (or uint8) N x H x W x C, the integers the compiled graph takes (bnn-flow's
InputSpec.apply of the images: for nets with an 8-bit pixel/255 input these are the raw pixels, NHWC).
result.npz: `acc` (N x classes int64, the last layer's accumulators), `scores` and `labels` when head.json
is present. --expect compares acc with the golden model's accumulators (exit 1 on any difference).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from packing import StreamLayout, pack, unpack  # noqa: E402

DMA_MAX_BYTES = (1 << 26) - 1  # the DMA's length register is 26 bits wide (vivado.tcl)
FRAMES_OFFSET = 0x10  # first s_axilite argument of a Vitis HLS block (after control, GIE, IER, ISR)
AP_START = 0x1


class BnnOverlay:
    """The accelerator on the board. Pre: folder holds overlay.json and the .bit/.hwh it names."""

    def __init__(self, folder: str | Path | None = None) -> None:
        from pynq import Overlay  # lazily: the packing helpers and --help work without PYNQ

        self.folder = Path(folder) if folder else Path(__file__).resolve().parent
        self.meta = json.loads((self.folder / "overlay.json").read_text())
        self.inp = StreamLayout.from_json(self.meta["in"])
        self.out = StreamLayout.from_json(self.meta["out"])
        self.overlay = Overlay(str(self.folder / self.meta["overlay"]))
        self.dma = getattr(self.overlay, self.meta["dma"])
        self.accel = getattr(self.overlay, self.meta["accel"])

    def frames_per_transfer(self) -> int:
        """The largest batch whose input and output each fit one DMA transfer."""
        return max(1, DMA_MAX_BYTES // max(self.inp.bytes_per_frame, self.out.bytes_per_frame))

    def _start(self, frames: int) -> None:
        """Set the frame count and start the block (ap_ctrl_hs: one start per batch)."""
        try:
            self.accel.register_map.frames = frames  # offsets from the .hwh when PYNQ parsed them
        except AttributeError:
            self.accel.write(FRAMES_OFFSET, frames)
        self.accel.write(0x00, AP_START)

    def _batch(self, q: np.ndarray) -> np.ndarray:
        from pynq import allocate

        n = q.shape[0]
        src = allocate(shape=(n * self.inp.bytes_per_frame,), dtype=np.uint8)
        dst = allocate(shape=(n * self.out.bytes_per_frame,), dtype=np.uint8)
        try:
            src[:] = pack(q, self.inp)
            src.flush()
            self.dma.recvchannel.transfer(dst)  # receive first: the block must never stall on its output
            self._start(n)
            self.dma.sendchannel.transfer(src)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            dst.invalidate()
            return unpack(np.array(dst), n, self.out)
        finally:
            src.freebuffer()
            dst.freebuffer()

    def run_integer(self, q: np.ndarray) -> np.ndarray:
        """int64 (N, classes) accumulators for the graph's input integers q (N, ...), in DMA-sized batches."""
        q = np.asarray(q)
        step = self.frames_per_transfer()
        return np.concatenate([self._batch(q[i : i + step]) for i in range(0, len(q), step)])


def apply_head(head: dict, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bnn-flow's classifier head (head.json): dot = a*acc + b, scores = scale*dot + bias, argmax (lowest index)."""
    a, b = head["acc_to_dot"]
    scores = (np.asarray(head["scale"]) * (acc * a + b) + np.asarray(head["bias"])).astype(np.float32)
    return scores, np.argmax(scores, axis=1).astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="q.npy: the graph's input integers, N x H x W x C")
    p.add_argument("--output", required=True, help="result.npz")
    p.add_argument("--expect", help="golden accumulators (N x classes .npy) to compare with")
    p.add_argument("--folder", help="folder with overlay.json and the .bit/.hwh (default: beside this file)")
    args = p.parse_args(argv)
    q = np.load(args.input)
    ol = BnnOverlay(args.folder)
    t0 = time.perf_counter()
    acc = ol.run_integer(q)
    dt = time.perf_counter() - t0
    result = {"acc": acc}
    head_path = ol.folder / "head.json"
    if head_path.is_file():
        result["scores"], result["labels"] = apply_head(json.loads(head_path.read_text()), acc)
    np.savez(args.output, **result)
    print(f"{len(q)} frames in {dt:.3f} s ({len(q) / dt:.1f} frames/s, including packing) -> {args.output}")
    if args.expect:
        diff = np.flatnonzero((np.load(args.expect).reshape(acc.shape) != acc).any(axis=1))
        if len(diff):
            print(f"MISMATCH with {args.expect} on {len(diff)} of {len(q)} frames (first: {diff[0]})", file=sys.stderr)
            return 1
        print(f"bit-exact with {args.expect} on all {len(q)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
