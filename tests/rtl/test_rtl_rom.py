"""bnn_rom against its memory file: every word, at LATENCY 1 and 2, as simulation sees it and with the open flow's
ECP5 macros (BNN_ROM_BANKS: a ROM deeper than one DP16KD built from banks of bank files). Icarus Verilog."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from rtl_sim import VERILOG_DIR, need

from bnn_flow.backends.rtl import memfiles
from bnn_flow.backends.rtl.estimate import ECP5, yosys_defines

# (width, depth): banks of 512 x 32 with a partial last one; 1-bit words past 16384; wider than 36 bits;
# 9-bit words (2048 a bank); one bank exactly; shallow
SHAPES = [(32, 1300), (1, 16390), (40, 600), (9, 2049), (18, 1024), (5, 7)]


def read_all(tmp_path, width: int, depth: int, latency: int, defines: list[str]) -> list[int]:
    tb = tmp_path / "tb.v"
    aw = max(1, (depth - 1).bit_length())
    tb.write_text(f"""
module tb;
  reg clk = 0;
  reg [{aw - 1}:0] addr = 0;
  wire [{width - 1}:0] q;
  integer i;
  bnn_rom #(.WIDTH({width}), .DEPTH({depth}), .FILE("r.memh"), .LATENCY({latency})) u (
      .clk(clk), .en(1'b1), .addr(addr), .q(q));
  initial begin
    for (i = 0; i < {depth + latency}; i = i + 1) begin
      addr = i < {depth} ? i : 0;
      #1 clk = 1;
      #1 clk = 0;
      if (i >= {latency - 1}) $display("%h", q);
    end
    $finish;
  end
endmodule
""")
    exe = tmp_path / "sim"
    subprocess.run([need("iverilog"), "-g2012", *defines, "-o", str(exe), str(tb), str(VERILOG_DIR / "bnn_rom.v")],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([need("vvp"), "-n", str(exe)], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "WARNING" not in out.stdout + out.stderr, out.stdout[-2000:]
    return [int(w, 16) for w in out.stdout.split()[:depth]]


@pytest.mark.parametrize("width,depth", SHAPES)
@pytest.mark.parametrize("latency", [1, 2])
@pytest.mark.parametrize("ecp5", [False, True], ids=["sim", "ecp5-macros"])
def test_rom_reads_its_file(tmp_path, width, depth, latency, ecp5):
    bits = np.random.default_rng(width * depth).integers(0, 2, (depth, width))
    text = memfiles.hex_lines(bits)
    (tmp_path / "r.memh").write_text(text)
    banks = memfiles.rom_bank_files("r.memh", text, width)
    assert bool(banks) == (depth > memfiles.rom_bank_depth(width))
    for name, bank in banks.items():
        assert len(bank.splitlines()) == memfiles.rom_bank_depth(width)
        (tmp_path / name).write_text(bank)
    expected = [int("".join(map(str, row[::-1])), 2) for row in bits]
    assert read_all(tmp_path, width, depth, latency, yosys_defines(ECP5) if ecp5 else []) == expected
