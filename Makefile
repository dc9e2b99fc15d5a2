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
	touch $(STAMP)

demo: $(STAMP)
	$(ATTN) fit --config timeseries/configs/dlinear_etth1.yaml --test_after_fit=true --trainer.enable_progress_bar=false
	# PatchTST's paper schedule is 100 epochs; the demo gives it one short epoch at 10x the lr.
	$(ATTN) fit --config timeseries/configs/patchtst_etth1.yaml --test_after_fit=true --trainer.enable_progress_bar=false \
	  --trainer.max_epochs=1 --trainer.limit_train_batches=40 --model.init_args.optimizer.init_args.lr=0.001
	$(VENV)/bin/attn-compare timeseries/ETTh1
	@echo "See every run in the MLflow UI: make ui  (http://127.0.0.1:5000)"

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q || [ $$? -eq 5 ]

ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root ./mlflow/artifacts

lint: $(STAMP)
	$(VENV)/bin/ruff check core vision audio timeseries recsys molecules tests

bench-attention: $(STAMP)
	$(VENV)/bin/attn-bench attention --json bench-results/attention.json
