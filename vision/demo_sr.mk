# vision SR part of `make demo`: a small HAT against bicubic, x4, on the embedded scikit-image photos
# (train on eight photos, test on the held-out `chelsea`). The small HAT trains 480 steps (about a minute
# on 2 CPU cores; see the config's notes) with its lr annealed to 0 by a cosine schedule: a fixed step
# count makes the result the same on any machine (31.89 against bicubic's 31.48 dB), and the annealing
# keeps the last weights stable (with a constant lr and a 60 s wall-time budget, 458 and 493 steps
# ended at 29.50 and 31.73 dB).
DEMOS += demo-sr
demo-sr := vision/sr/skimage HAT Bicubic

.PHONY: demo-sr
demo-sr: $(STAMP)
	$(ATTN) fit --config vision/configs/bicubic_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false
	$(ATTN) fit --config vision/configs/hat_small_x4_skimage.yaml --test_after_fit=true \
	  --trainer.enable_progress_bar=false --trainer.enable_model_summary=false \
	  --trainer.max_steps=480 --trainer.limit_val_batches=0 --trainer.num_sanity_val_steps=0 --checkpoint.monitor=null \
	  --model.init_args.lr_scheduler=torch.optim.lr_scheduler.CosineAnnealingLR --model.init_args.lr_scheduler.init_args.T_max=480
