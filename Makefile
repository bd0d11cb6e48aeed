# `make demo` and `make test` each do all set-up on a fresh machine (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 2
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test test-fast test-slow bench docs clean

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test:
	bash scripts/setup.sh --test
	$(PY) -m pytest -m "not slow" -q -p no:cacheprovider
	$(PY) -m pytest -m slow -q -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-fast: setup
	$(PY) -m pytest -m "not slow" -q

bench: setup
	bash benchmarks/run_all.sh

docs: setup
	$(PY) -m reasonrl config markdown > docs/config.md

clean:
	rm -rf runs .pytest_cache
