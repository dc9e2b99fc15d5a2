# vision SR part of `make demo`: a small HAT against bicubic, x4, on the embedded scikit-image photos
# (train on eight photos, test on the held-out `chelsea`). One torch thread: on a 2-core machine two
# threads per process oversubscribe. The small HAT trains for 30 seconds (see the config's notes).
DEMOS += demo-sr

.PHONY: demo-sr
demo-sr: $(STAMP)
	OMP_NUM_THREADS=1 $(ATTN) fit --config vision/configs/bicubic_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false
	OMP_NUM_THREADS=1 $(ATTN) fit --config vision/configs/hat_small_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false \
	  --trainer.max_time=00:00:00:30 --trainer.limit_val_batches=0 --trainer.num_sanity_val_steps=0 --checkpoint.monitor=null
	$(VENV)/bin/attn-compare vision/sr-x4-skimage
