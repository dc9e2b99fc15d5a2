"""Long-term time-series forecasting: the LTSF-Linear baselines against Transformer forecasters.

Reproduces Zeng et al., "Are Transformers Effective for Time Series Forecasting?" (AAAI 2023) on
ETT and any date-column CSV: `models/` (one file per model), `data/` (reader, splits,
`ETTDataModule`), `tasks.py` (`ForecastTask`), `configs/`, `published.py` (the paper's datasets,
settings and published rows) and `bench.py` (`attn-bench ltsf`).
"""
