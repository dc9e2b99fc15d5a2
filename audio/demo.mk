# audio part of `make demo`: the self-attention tagger against the short-chunk CNN, the strongest baseline of
# `attn-bench tagging` at its budget (audio/README.md), on a small rendered set: 320 clips from the first 32 Bach chorales of
# the music21 corpus (the bench: 2,000 from all 410), 60 steps each (the bench: 2,000), side by side on one
# thread each. Rendering from a cold cache is part of the two minutes.
DEMOS += demo-tagging
demo-tagging := audio/tagging/rendered SelfAttentionTagger ShortChunkCNN

.PHONY: demo-tagging
demo-tagging: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/attn-bench tagging --num-clips 320 --max-compositions 32 --models tagger shortchunk \
	  --max-steps 60 --jobs 2 --threads 1 \
	  --set model.init_args.lr_scheduler.init_args.warmup=6 model.init_args.lr_scheduler.init_args.total=60
