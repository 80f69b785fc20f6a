# One-command set-up: `make test` and `make demo` create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch first, pinned: this release installs the CPU build from local disk; an unpinned torch may
# pull a multi-gigabyte CUDA build.
TORCH_PIN ?= torch==2.13.0
DEMO_OUT ?= results/demo
JOBS ?= 2

.PHONY: venv test lint typecheck format demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# mypy over src/anisoada with the [tool.mypy] settings of pyproject.toml (pinned in the dev extra).
typecheck: venv
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

test: venv lint typecheck
	$(PY) -m pytest -q

demo: venv
	$(VENV)/bin/anisoada reproduce --preset quick --out $(DEMO_OUT) --jobs $(JOBS)

bench: venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
