"""Vision LightningModules: low-light enhancement and super-resolution."""
