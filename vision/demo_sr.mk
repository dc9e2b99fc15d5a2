# vision SR part of `make demo`: a small HAT against bicubic, x4, on the embedded scikit-image photos
# (train on eight photos, test on the held-out `chelsea`). The small HAT trains for 60 seconds of wall
# time (see the config's notes): on an idle 2-core CPU that is enough to pass bicubic (31.69 against
# 31.48 dB); on a busy machine it gets fewer steps and can end below bicubic.
DEMOS += demo-sr

.PHONY: demo-sr
demo-sr: $(STAMP)
	$(ATTN) fit --config vision/configs/bicubic_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false
	$(ATTN) fit --config vision/configs/hat_small_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false \
	  --trainer.max_time=00:00:01:00 --trainer.limit_val_batches=0 --trainer.num_sanity_val_steps=0 --checkpoint.monitor=null
	$(VENV)/bin/attn-compare vision/sr-x4-skimage
