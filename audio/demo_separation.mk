# audio separation part of `make demo`: the small HT Demucs against Hybrid Demucs (torchaudio) on a small
# rendered four-source set (24 train / 2 valid / 4 test tracks of 6 s from the first 40 Bach
# chorales; the bench: 96 / 8 / 16 tracks of 8 s from all 410), 40 steps each (the bench: 400), side by side on
# one thread each, with the mixture floor (no training; logged beside them, not in the demo's table), without
# museval, the MUSDB excerpt, the 3-minute track or the IRM oracle (`attn-bench separation` has them).
DEMOS += demo-separation
demo-separation := audio/separation/rendered HTDemucs HDemucs

.PHONY: demo-separation
demo-separation: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/attn-bench separation --num-tracks 24 2 4 --track-seconds 6 --max-compositions 40 \
	  --models htdemucs hdemucs mixture --max-steps 40 --jobs 2 --threads 1 --museval-tracks 0 --long-seconds 0 \
	  --musdb-path '' --set model.init_args.lr_scheduler.init_args.warmup=5 model.init_args.lr_scheduler.init_args.total=40
