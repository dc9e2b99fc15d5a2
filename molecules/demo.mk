# molecules part of `make demo`: R-MAT against a random forest on ECFP4 on the embedded ESOL
# (molecules/data/ESOL.csv), random split, seed 0. A short version of `attn-bench molecules`:
# R-MAT trains 8 epochs (its config: 36) with the cosine schedule shortened to match, the forest
# has 100 trees (the benchmark: 500); both run side by side, one thread each.
DEMOS += demo-molecules
demo-molecules := molecules/property/ESOL RMAT FingerprintRF

.PHONY: demo-molecules
demo-molecules: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/attn-bench molecules --dataset ESOL --seeds 0 --models rmat rf_ecfp4 \
	  --max-epochs 8 --trees 100 --jobs 1 --threads 1 \
	  --set model.init_args.lr_scheduler.init_args.warmup=30 model.init_args.lr_scheduler.init_args.total=232
