# recsys part of `make demo`: Hiformer against DCN-v2 on the embedded planted-interaction click log.
# Both run their full configs (60,000 generated rows, early stopping on validation AUC); on 2 CPU
# cores the pair takes about a minute. `attn-bench ctr` runs the whole table with latency.
DEMOS += demo-recsys
demo-recsys := recsys/ctr/synthetic Hiformer DCNv2

RECSYS_DEMO := --test_after_fit=true --trainer.enable_progress_bar=false

.PHONY: demo-recsys
demo-recsys: $(STAMP)
	$(ATTN) fit --config recsys/configs/dcnv2_synthetic.yaml $(RECSYS_DEMO)
	$(ATTN) fit --config recsys/configs/hiformer_synthetic.yaml $(RECSYS_DEMO)
