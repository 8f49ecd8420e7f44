# bnn-flow: every target creates/updates the virtual environment first (idempotent).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch: with pip's default index an unpinned torch is a multi-GB CUDA build.
# Elsewhere than on our dev/CI machines (which hold the CPU wheel locally) use
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

RECIPE ?= models/bcnn-mnist.yaml
# the latest run of `make train`, else the one `make demo` wrote (so `make bitstream` right after `make demo` works)
RUN    ?= $(if $(wildcard runs/latest),runs/latest,runs/demo)
BUILD  ?= $(RUN)/build
IMAGES ?= 10000
export BNN_FLOW_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup system-tools demo test test-slow lint train export compile compare bitstream bitstream-open bench pi-bench fuzz clean

setup: $(STAMP) system-tools
	@# the Xilinx ap_int headers for HLS C-simulation: pinned hls4ml wheel -> $(VENV)/share/bnn-flow/ap_types
	@$(BIN)/python -m bnn_flow.backends.hls.ap_types >/dev/null

# Debian tools the targets run under: qemu-user (the Raspberry Pi targets aarch64, armv7, armv6), Icarus
# Verilog and Verilator (the RTL library's tests and the rtl target's cycle-accurate simulation).
# Installed where we can (root with apt-get); otherwise one line says the command, and those targets
# are listed as "not run" by compare.
SYSTEM_TOOLS := qemu-aarch64:qemu-user qemu-arm:qemu-user iverilog:iverilog verilator:verilator
system-tools:
	@missing="$$(for t in $(SYSTEM_TOOLS); do command -v $${t%%:*} >/dev/null || echo $${t##*:}; done | sort -u)"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make setup: installing $$missing (apt-get)"; \
	    apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "make setup: missing $$missing: install with: sudo apt-get install $$missing" >&2; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),) "$(TORCH_PIN)"
	$(PIP) install -e '.[dev,fpga]'
	@touch $(STAMP)

demo: setup
	$(BIN)/python -m bnn_flow.demo

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check bnn_flow tests bench

train: setup
	$(BIN)/bnn-flow train $(RECIPE) --out $(RUN)

export: setup
	$(BIN)/bnn-flow export $(RUN)

compile: setup
	$(BIN)/bnn-flow compile $(RUN)/model.onnx --out $(BUILD) --verify

compare: setup
	$(BIN)/bnn-flow compare $(BUILD) --images $(IMAGES)

# Vendor flow: HLS project + C-simulation check, then Vitis HLS and Vivado when on PATH (else exit 3).
# A real bitstream for BOARD (default ulx3s-85f) from $(RUN)'s model (after `make demo`: the demo's). An open-flow
# board (ulx3s-85f, icebreaker: yosys + nextpnr from PyPI, docs/open-flow.md) gets its own build, folded for it
# (--fit), in $(RUN)/build-BOARD; a Xilinx board (BOARD=pynq-z2 ...) uses $(BUILD) and needs Vitis HLS + Vivado
# (without them: exit 3 with the ready project).
OPEN_BOARDS := ulx3s-85f icebreaker
BOARD ?= ulx3s-85f
bitstream: setup
ifneq ($(filter $(BOARD),$(OPEN_BOARDS)),)
	$(BIN)/bnn-flow compile $(RUN)/model.onnx --out $(RUN)/build-$(BOARD) --board $(BOARD) --fit
	$(BIN)/bnn-flow bitstream $(RUN)/build-$(BOARD) --flow open --board $(BOARD)
else
	$(BIN)/bnn-flow bitstream $(BUILD) --board $(BOARD)
endif

# The open flow on an existing BUILD (folded for the board or not): BOARD=ulx3s-85f (default) or icebreaker.
bitstream-open: setup
	$(BIN)/bnn-flow bitstream $(BUILD) --flow open --board $(BOARD)

bench: setup
	$(BIN)/python bench/golden.py
	$(BIN)/python bench/cpu.py

pi-bench: setup
	$(BIN)/bnn-flow pi-bench $(BUILD)

# Fuzz the .bnn loader: clang libFuzzer + ASan/UBSan, FUZZ_RUNS executions from a seed corpus of real .bnn
# files (small random nets); findings land in $(FUZZ_DIR)/crashes/. $(RUNTIME)/fuzz/README.md has the details.
FUZZ_RUNS ?= 1000000
FUZZ_DIR  ?= build/fuzz
# the host's optimized kernels make each execution ~3x faster than the reference ones (a loaded model is run)
FUZZ_OPT  := $(if $(filter x86_64,$(shell uname -m)),kernels_x86.c,kernels_opt_generic.c)
RUNTIME   := bnn_flow/backends/cpu/runtime
FUZZ_SRC  := $(RUNTIME)/fuzz/fuzz_loader.c $(addprefix $(RUNTIME)/src/,model.c crc32.c net.c split.c batch.c fuse.c bitplane.c conv.c ceiling.c \
             kernels_ref.c $(FUZZ_OPT))
fuzz: setup
	@command -v clang >/dev/null || { echo "make fuzz: clang not found (apt-get install clang)" >&2; exit 3; }
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	clang -g -O2 -march=native -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$(RUNTIME)/include \
	  -I$(RUNTIME)/src $(FUZZ_SRC) -pthread -o $(FUZZ_DIR)/fuzz_loader
	@test -n "$$(ls $(FUZZ_DIR)/seeds 2>/dev/null)" || $(BIN)/python -m bnn_flow.backends.cpu.fuzz_corpus $(FUZZ_DIR)/seeds
	cd $(FUZZ_DIR) && nice -n 19 ./fuzz_loader -runs=$(FUZZ_RUNS) -artifact_prefix=crashes/ -print_final_stats=1 \
	  corpus seeds

clean:
	rm -rf runs build
