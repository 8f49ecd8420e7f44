"""The RTL library under every tool that must accept it: `verilator --lint-only -Wall` on each module over
several parameter sets (no warning, except the ones waived in the source with a reason), Icarus in strict
Verilog-2005 mode, and one Verilator simulation holding a configuration of every module, bit-exact against
the golden model like the Icarus grids."""

from __future__ import annotations

import subprocess

import pytest
from rtl_sim import LIBRARY, IntType, check, need, run_verilator
from test_rtl_maxpool import pool_cases
from test_rtl_mvau import BIPOLAR, U8, mvau_cases
from test_rtl_stream import dwc_cases, fifo_cases
from test_rtl_window import window_cases

LINT = {
    "bnn_fifo": [{}, {"WIDTH": 36, "DEPTH": 600}, {"WIDTH": 1, "DEPTH": 3}],
    "bnn_fifo_lut": [{}, {"DEPTH": 5, "WIDTH": 3}],
    "bnn_out_queue": [{}, {"DEPTH": 9}],
    "bnn_delay": [{"CYCLES": 0}, {"CYCLES": 1}, {"CYCLES": 4, "WIDTH": 3}],
    "bnn_adder_tree": [{}, {"N": 5, "IW": 7, "SIGNED": 1, "OW": 12, "STAGE_LEVELS": 1}, {"N": 1, "IW": 9, "OW": 4},
                       {"N": 9, "STAGE_LEVELS": 0}],
    "bnn_popcount": [{}, {"N": 9, "OW": 5}, {"N": 64, "OW": 7, "STAGE_LEVELS": 3}, {"N": 1, "OW": 1}],
    "bnn_dwc": [{}, {"IN_E": 2, "OUT_E": 3, "EB": 8, "N": 12}, {"IN_E": 4, "OUT_E": 1, "N": 8}],
    "bnn_window": [{}, {"H": 7, "W": 5, "CH": 4, "SIMD": 2, "EB": 8, "PAD": -3, "OH": 7, "OW": 5},
                   {"KH": 1, "KW": 1, "PT": 0, "PL": 0, "OH": 4, "OW": 4},
                   {"H": 32, "W": 32, "CH": 64, "SIMD": 64, "SH": 2, "SW": 2, "OH": 16, "OW": 16}],
    "bnn_mvau": [{}, {"MW": 27, "MH": 16, "SIMD": 3, "PE": 4, "IB": 8, "WB": 2, "WSIGNED": 1, "BINARY": 0, "AB": 14},
                 {"MW": 9, "MH": 4, "SIMD": 1, "PE": 1, "THRESH": 0, "OB": 5, "AB": 5},
                 {"MW": 6, "MH": 4, "SIMD": 2, "IB": 4, "ISIGNED": 1, "WB": 6, "WSIGNED": 1, "BINARY": 0, "AB": 12,
                  "THRESH": 0, "OB": 12},
                 {"MW": 27, "MH": 8, "SIMD": 9, "PE": 2, "IB": 8, "WB": 1, "WBIPOLAR": 1, "BINARY": 0, "AB": 14,
                  "STAGE_LEVELS": 0},
                 {"MW": 8, "MH": 4, "SIMD": 8, "PE": 4, "WEIGHT_RAM_STYLE": '"block"'},
                 {"MW": 16, "MH": 8, "SIMD": 4, "PE": 1, "WEIGHT_RAM_STYLE": '"logic"', "STAGE_LEVELS": 1}],
    "bnn_dot": [{}, {"IB": 8, "WB": 2, "WSIGNED": 1, "BINARY": 0, "AB": 12},
                {"SIMD": 3, "IB": 4, "ISIGNED": 1, "WB": 6, "WSIGNED": 1, "BINARY": 0, "AB": 12}],
    "bnn_rom": [{}, {"STYLE": '"block"', "DEPTH": 1}, {"STYLE": '"logic"', "WIDTH": 3}],
    "bnn_maxpool": [{}, {"H": 7, "W": 7, "CH": 4, "KH": 3, "KW": 3, "OH": 3, "OW": 3, "PE": 2, "EB": 8, "SIGNED": 1},
                    {"KH": 1, "KW": 1, "OH": 2, "OW": 2}],
}


def test_every_module_is_linted():
    """One module per file, named as the file, and every one of them in the lint list below."""
    # uart_* and board_* are the open flow's board top, linted by test_rtl_uart.py (board_top needs a bnn_top,
    # board_ecp5/board_ice40 the vendor primitives)
    assert sorted(p.stem for p in LIBRARY if not p.stem.startswith(("uart_", "board_"))) == sorted(LINT)
    for p in LIBRARY:
        assert f"module {p.stem} " in p.read_text(), p


@pytest.mark.parametrize("module", sorted(LINT))
def test_verilator_lint_wall(module):
    verilator = need("verilator")
    for params in LINT[module]:
        cmd = [verilator, "--lint-only", "-Wall", "--top-module", module, *[f"-G{k}={v}" for k, v in params.items()],
               *map(str, LIBRARY)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0 and "%Warning" not in proc.stderr, (module, params, proc.stderr[-3000:])


def test_icarus_verilog_2005():
    """Every module elaborates as plain Verilog-2005 (iverilog -g2005), not only as SystemVerilog."""
    iverilog = need("iverilog")
    for module in LINT:
        proc = subprocess.run([iverilog, "-g2005", "-Wall", "-o", "/dev/null", "-s", module, *map(str, LIBRARY)],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), (module, proc.stderr)


def test_verilator_simulation(tmp_path):
    """One Verilator build with a configuration of every module (stalls and no stalls), bit-exact."""
    cases = (fifo_cases(8, 3, 20, seed=1) + fifo_cases(16, 20, 50, seed=3)
             + dwc_cases(2, 3, 8, 12, seed=5)
             + window_cases(5, 4, 4, 3, 1, (1, 1, 1, 1), 2, seed=7)
             + window_cases(6, 5, 1, 3, 2, (1, 1, 1, 1), 1, eb=8, signed=True, pad_value=-5, seed=9)
             + mvau_cases(12, 8, 4, 2, 3, seed=11)
             + mvau_cases(27, 8, 3, 4, 2, binary=False, in_dtype=U8, w_dtype=BIPOLAR, seed=13)
             + mvau_cases(8, 4, 4, 2, 2, binary=False, thresh=False, in_dtype=IntType(4, True),
                          w_dtype=IntType(4, True), seed=15)
             + pool_cases(7, 7, 4, 3, 2, 2, seed=17) + pool_cases(4, 6, 3, 2, 2, 1, eb=8, signed=True, seed=19))
    run_verilator(cases, tmp_path)
    check(cases)
