"""Shared core of the suite: attention kernels and modules, transformer blocks, training glue.

Nothing here imports a domain package, and nothing touches CUDA at import.
"""
