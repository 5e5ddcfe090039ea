# culturespa: the README's commands. `make test` is also what CI runs (.ci/run).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# CPU machines take the CPU build of torch (already cached on the project's machines);
# an unpinned torch would download a multi-GB CUDA build. GPU users: `make install-gpu`.
TORCH_CPU ?= torch==2.13.0

.PHONY: install-cpu install-gpu install-dev test lint

install-cpu:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_CPU)
	$(PIP) install -q -e '.[eval,report]'

install-gpu:
	$(PIP) install -q -e '.[eval,train,report]'

install-dev:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_CPU)
	$(PIP) install -q -e '.[dev]'

test: install-dev
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

lint:
	ruff check . && ruff format --check .
