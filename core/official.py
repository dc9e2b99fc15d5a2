"""Load the weights a paper's official code released into our model of it.

Official checkpoints nest their state dict (BasicSR's ``params_ema``/``params``, Lightning's
``state_dict``, demucs' ``state``), prefix keys with ``module.`` (DataParallel), and name and
lay out parameters their own way. Each model that can take official weights has one converter,
declared next to the model with :func:`official_converter`, that maps the official names and
layouts onto ours; :func:`load_official_state_dict` unwraps the checkpoint, finds the converter
by the model's class and loads the result strictly, so a mismatch fails with the names at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

Converter = Callable[[dict[str, Tensor], nn.Module], dict[str, Tensor]]

_CONVERTERS: dict[type[nn.Module], Converter] = {}

# Keys under which official checkpoints keep their state dict, in the order tried.
_NESTED_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "state", "net")


def official_converter(model_cls: type[nn.Module]) -> Callable[[Converter], Converter]:
    """Declare ``fn(official_state_dict, model) -> our_state_dict`` as ``model_cls``'s converter."""

    def register(fn: Converter) -> Converter:
        _CONVERTERS[model_cls] = fn
        return fn

    return register


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The flat ``name -> tensor`` dict inside an official checkpoint, without ``module.`` prefixes."""
    state: Any = checkpoint
    while isinstance(state, Mapping) and not all(isinstance(v, Tensor) for v in state.values()):
        inner = next((state[k] for k in _NESTED_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            found = sorted(k for k, v in state.items() if isinstance(v, Mapping))
            raise ValueError(
                f"no state dict found in the checkpoint: looked under {list(_NESTED_KEYS)}, "
                f"nested mappings present: {found}"
            )
        state = inner
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_official_state_dict(
    model: nn.Module, checkpoint: str | Path | Mapping[str, Any]
) -> nn.Module:
    """Convert an official checkpoint (a path or a loaded mapping) and load it into ``model``.

    Files are read with ``torch.load(weights_only=True)``: official checkpoints that pickle
    their own classes are refused rather than executed. Returns ``model`` for chaining.
    """
    if isinstance(checkpoint, str | Path):
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    converter = next((_CONVERTERS[c] for c in type(model).__mro__ if c in _CONVERTERS), None)
    if converter is None:
        known = sorted(c.__name__ for c in _CONVERTERS)
        raise ValueError(
            f"{type(model).__name__} has no official-weights converter; models that have one: {known}"
        )
    model.load_state_dict(converter(unwrap_state_dict(checkpoint), model), strict=True)
    return model
