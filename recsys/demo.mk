# recsys part of `make demo`: Hiformer against DCN-v2 on the embedded planted-interaction click log,
# through `attn-bench ctr` (AUC, log loss, parameters, training time and CPU latency in one table;
# both runs also land in MLflow experiment recsys/synthetic). A shortened run to stay within
# 2 minutes on 2 CPU cores: 30,000 generated rows, at most 4 epochs each.
DEMOS += demo-recsys

.PHONY: demo-recsys
demo-recsys: $(STAMP)
	$(VENV)/bin/attn-bench ctr --models dcnv2 hiformer --rows 30000 --max-epochs 4 --latency-rounds 3 \
	  --json bench-results/ctr_demo.json
