# timeseries part of `make demo`: PatchTST against DLinear on the embedded ETTh1, horizon 96.
DEMOS += demo-timeseries
demo-timeseries := timeseries/forecast/ETTh1 PatchTST DLinear

.PHONY: demo-timeseries
demo-timeseries: $(STAMP)
	$(ATTN) fit --config timeseries/configs/dlinear_etth1.yaml --test_after_fit=true --trainer.enable_progress_bar=false
	# PatchTST's paper schedule is 100 epochs; the demo gives it one short epoch at 10x the lr.
	$(ATTN) fit --config timeseries/configs/patchtst_etth1.yaml --test_after_fit=true --trainer.enable_progress_bar=false \
	  --trainer.max_epochs=1 --trainer.limit_train_batches=40 --model.init_args.optimizer.init_args.lr=0.001
