# recsys part of `make demo`: Hiformer against DCN-v2 on the embedded planted-interaction click log.
# Shortened to fit 2 minutes on 2 CPU cores: 20,000 generated rows, at most 3 epochs, Hiformer with
# 1 layer instead of the config's 2. `attn-bench ctr` runs the full table with latency.
DEMOS += demo-recsys

RECSYS_DEMO := --test_after_fit=true --trainer.enable_progress_bar=false --trainer.max_epochs=3 \
  --data.init_args.synthetic_rows=20000

.PHONY: demo-recsys
demo-recsys: $(STAMP)
	$(ATTN) fit --config recsys/configs/dcnv2_synthetic.yaml $(RECSYS_DEMO)
	$(ATTN) fit --config recsys/configs/hiformer_synthetic.yaml $(RECSYS_DEMO) --model.init_args.model.init_args.num_layers=1
	$(VENV)/bin/attn-compare recsys/synthetic
