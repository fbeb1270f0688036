# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow bench lint partition-table clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robustvae demo --out outputs/demo
	$(VENV)/bin/robustvae gallery --out outputs/gallery

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow --durations=5

bench: $(STAMP)
	$(PY) bench/bench_losses.py
	$(PY) bench/bench_training.py
	$(PY) bench/bench_restoration.py
	$(PY) bench/bench_depth.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

partition-table: $(STAMP)
	$(PY) scripts/make_partition_table.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
