"""recsys: Hiformer heterogeneous-attention ranking against the classic CTR baselines.

`recsys.models` (one file per model), `recsys.data` (schema, preprocessing, format readers,
planted-interaction generator, `CTRDataModule`), `recsys.tasks.CTRTask` (whole-split ROC-AUC /
log loss) and `recsys.bench` (`attn-bench ctr`).
"""
