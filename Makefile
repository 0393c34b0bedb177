# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all
CONFIG ?=
SNAKEMAKE_ARGS ?=

.PHONY: run test lint report venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: venv
	$(BIN)/twostream check-config config/config.yaml $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG)) $(SNAKEMAKE_ARGS)

test: venv
	$(BIN)/python -m pytest -q -ra tests

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check workflow

report: venv
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results logs benchmarks .snakemake
