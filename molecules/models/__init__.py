"""Molecule models: R-MAT and MAT (attention), fingerprint / descriptor random forests (baselines)."""
