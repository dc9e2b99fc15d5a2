"""timeseries package."""
