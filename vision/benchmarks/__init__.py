"""Vision benchmarks: `attn-bench lowlight` and `attn-bench sr`."""
