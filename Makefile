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
RUN    ?= runs/latest
BUILD  ?= $(RUN)/build
IMAGES ?= 10000
export BNN_FLOW_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup demo test test-slow lint train export compile compare bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),) "$(TORCH_PIN)"
	$(PIP) install -e '.[dev]'
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

bench: setup
	$(BIN)/python bench/golden.py

clean:
	rm -rf runs build
