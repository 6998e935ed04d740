# Quick start:  make demo   (the embedded demo, ends with reports/index.html)
#               make test   (the test suite)
# Both create .venv with the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed-stamp
CORES ?= $(shell nproc 2>/dev/null || echo 2)
# The demo trains three variants with one thread each. On two cores Snakemake would run two side
# by side and the third alone (one core idle for a third of the run); letting all three run at
# once on fewer cores makes the run take total CPU time / cores (issue 20, README "Demo").
DEMO_CORES ?= $(shell n=$(CORES); echo $$(( n < 3 ? 3 : n )))
export PATH := $(BIN):$(PATH)

.PHONY: install demo test test-all paper-dry-run lint clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c requirements.lock -e '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	snakemake --cores $(DEMO_CORES) --resources gpu=1
	@echo
	@echo "Report: $(abspath reports/index.html)"

test: $(STAMP)
	python -m pytest

test-all: $(STAMP)
	python -m pytest -m ''

paper-dry-run: $(STAMP)
	snakemake -n --configfile params/paper.yaml

# Style and lint: ruff (pyproject.toml [tool.ruff]) for the Python, Snakemake's linter and
# snakefmt for the workflow. `make test` runs the ruff checks too (tests/test_style.py).
lint: $(STAMP)
	ruff check src tests bench
	ruff format --check src tests bench
	snakemake --lint
	snakefmt --check workflow/

# metrics/ stays: its headline files are DVC metrics kept in git (README "Rerun, change, compare").
clean:
	rm -rf data models results logs benchmarks .snakemake
	find reports -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
