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

# Each domain adds its part of the demo in <domain>/demo*.mk: a target `demo-<part>`
# appended to DEMOS, which trains its model and baseline and prints the comparison.
DEMOS :=
include $(sort $(wildcard */demo*.mk))

demo: $(STAMP) $(DEMOS)
	@echo "See every run in the MLflow UI: make ui  (http://127.0.0.1:5000)"

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q || [ $$? -eq 5 ]

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
