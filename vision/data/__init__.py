"""Vision data: image I/O, paired and HR-only datasets, datamodules."""
