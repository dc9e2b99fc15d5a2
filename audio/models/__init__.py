"""Audio models: the self-attention tagger (model), FCN, the short-chunk CNN and logistic regression (baselines)."""
