# vision low-light part of `make demo`: LYT-Net against adaptive gamma correction (the best classical
# baseline here) on the embedded default (skimage photos darkened synthetically; no download).
DEMOS += demo-lowlight
demo-lowlight := vision/lowlight/synthetic LYTNet GammaCorrection

.PHONY: demo-lowlight
demo-lowlight: $(STAMP)
	$(ATTN) fit --config vision/configs/gamma_synthetic.yaml --test_after_fit=true --trainer.enable_progress_bar=false --trainer.enable_model_summary=false
	$(ATTN) fit --config vision/configs/lytnet_synthetic.yaml --test_after_fit=true --trainer.enable_progress_bar=false --trainer.enable_model_summary=false
