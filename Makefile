# Two commands on a fresh machine: `make report` and `make test` (each sets everything up).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE   := tests/breaker_node
NODE_STAMP := $(NODE)/node_modules/.installed-stamp
KERNEL := love-reliability

.PHONY: setup system-deps report-deps report test test-fast lab docs bench live clean-notebooks clean

setup: system-deps $(STAMP) $(NODE_STAMP)

system-deps:
	@sh scripts/system-deps.sh

# Only what the gate, its report, JupyterLab and the docs need (no test-only servers, no Node service).
report-deps:
	@sh scripts/system-deps.sh report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (love-reliability)" >/dev/null
	touch $(STAMP)

# The Node service with real opossum breakers (tests/test_opossum.py), versions pinned in its lock file.
$(NODE_STAMP): $(NODE)/package-lock.json
	cd $(NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job: the monitoring proof report on the bundled history.
report: report-deps $(STAMP)
	$(BIN)/reliability demo

## Every test: lint (ruff), the layer contract, the documentation site, pytest, the promtool rule tests,
## nbval over the notebooks.
test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
		-p no:cacheprovider tests notebooks

## Pure tests only (no Prometheus), for quick edits.
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	LOVE_TEST_NO_PROMETHEUS=1 $(BIN)/python -m pytest -p no:cacheprovider -q tests

## JupyterLab with this project's kernel and the notebooks ready to run (as root too: the fresh-machine route).
## e.g. LAB_ARGS="--no-browser --ip=0.0.0.0 --port=8888" on a server; LAB_DIR=... serves another folder.
LAB_DIR ?= notebooks
lab: report-deps $(STAMP) $(VENV)/.lab-stamp
	$(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

$(VENV)/.lab-stamp: pyproject.toml
	$(BIN)/pip install --quiet -e '.[lab]'
	touch $@

## The documentation site on http://127.0.0.1:8000 (docs/, mkdocs.yml).
docs: report-deps $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

## Benchmarks (tables as in benchmarks/RESULTS.md); e.g. BENCH_ARGS="--quick --only pushdown".
bench: setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## The live stack (tests/live) with the production rules for about 15 minutes; prints its figures.
live: setup
	cd tests && ../$(BIN)/python -m live.stack --minutes 15 --factor 1

## Strip incidental outputs before committing; keeps the nbval golden cells' outputs.
clean-notebooks:
	$(BIN)/python scripts/strip_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) reports build *.egg-info
