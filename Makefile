# `make demo` trains models against their baselines into MLflow and prints the comparison;
# `make test` runs the test suite. Both create .venv and install the suite when missing.

VENV ?= .venv
PY := $(VENV)/bin/python
ATTN := $(VENV)/bin/attn
STAMP := $(VENV)/.installed

.PHONY: demo test ui lint bench-attention

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# tinysoundfont (audio rendering) declares pyaudio, which has no wheel and needs portaudio
	# headers to build; the synthesizer does not use it, so install it without dependencies.
	$(PY) -m pip install -q --no-deps 'tinysoundfont>=0.3.7'
	touch $(STAMP)

# Each part of the demo is one file <domain>/demo*.mk: a target `demo-<part>`, appended to DEMOS, that
# trains one attention model and its strongest baseline into MLflow, and a variable of the same name,
# `<MLflow experiment> <model> <baseline>` (the runs' `model` tags). core/demo.py runs the parts of
# DOMAINS (all when empty; `make demo DOMAINS="timeseries molecules"`) with their output in DEMO_LOG,
# then prints one table of model against baseline from the runs they made.
DEMOS :=
include $(sort $(wildcard */demo*.mk))
DOMAINS ?=
DEMO_LOG ?= demo.log

demo: $(STAMP)
	@$(PY) -m core.demo --domains "$(DOMAINS)" --log "$(DEMO_LOG)" $(foreach part,$(DEMOS),"$(part) $($(part))")

# pytest exits 5 when it collects no test; that is not a failure of the suite. The tests run in
# TEST_WORKERS processes (pytest-xdist, one test file per worker at a time; 0: in this process), each
# with OMP_NUM_THREADS torch threads (default 1; `make test OMP_NUM_THREADS=2` for two).
TEST_WORKERS ?= 2
OMP_NUM_THREADS ?= 1
test: $(STAMP)
	OMP_NUM_THREADS=$(OMP_NUM_THREADS) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile || [ $$? -eq 5 ]

# The MLflow UI on the local store (http://127.0.0.1:$(UI_PORT)); the runs' artifacts are files under
# mlflow/artifacts. A shared tracking server instead: README, "Tracking server".
UI_PORT ?= 5000
ui: $(STAMP)
	mkdir -p mlflow
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root ./mlflow/artifacts \
	  --host 127.0.0.1 --port $(UI_PORT) --workers 1

lint: $(STAMP)
	$(VENV)/bin/ruff check core vision audio timeseries recsys molecules tests

bench-attention: $(STAMP)
	$(VENV)/bin/attn-bench attention --json bench-results/attention.json
