"""Load the weights a paper's official code released into our model of it.

Official checkpoints nest their state dict (BasicSR's ``params_ema``/``params``, Lightning's
``state_dict``, demucs' ``state``), prefix keys with ``module.`` (DataParallel), and name and
lay out parameters their own way. Each model that can take official weights has one converter,
declared next to the model with :func:`official_converter`, that maps the official names and
layouts onto ours; :func:`load_official_state_dict` unwraps the checkpoint, finds the converter
by the model's class and loads the result strictly, so a mismatch fails with the names at fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
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


def rename_keys(
    official: Mapping[str, Tensor],
    rules: Sequence[tuple[str, str]],
    model: nn.Module,
    drop: Sequence[str] = (),
) -> dict[str, Tensor]:
    """``official`` renamed to ``model``'s state-dict keys by ``(pattern, replacement)`` rules.

    Each official key takes the first rule whose pattern matches the whole key (``re.fullmatch``;
    the replacement may use its groups, ``\\g<name>``); keys fully matching a ``drop`` pattern
    (buffers the model computes itself, parameters the official forward never uses) are left out.
    Raises ``ValueError`` naming the keys when an official key matches no rule (an official
    parameter without a counterpart is never silently ignored), maps to a key ``model`` lacks
    (e.g. a deeper configuration's extra blocks), or shares its target with another key; when
    ``model`` needs a key no official key maps to; or when a shape differs (naming the official
    and our key). So a checkpoint of another configuration fails before anything is loaded.
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    dropped = [re.compile(pattern) for pattern in drop]
    ours, model_name = model.state_dict(), type(model).__name__
    converted: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    unknown, surplus = [], []
    for key, value in official.items():
        if any(p.fullmatch(key) for p in dropped):
            continue
        found = next(((m, r) for p, r in compiled if (m := p.fullmatch(key))), None)
        if found is None:
            unknown.append(key)
            continue
        name = found[0].expand(found[1])
        if name not in ours:
            surplus.append(key)
            continue
        if name in source:
            raise ValueError(f"official keys {source[name]} and {key} both map to {model_name}'s {name}")
        if value.shape != ours[name].shape:
            raise ValueError(
                f"official {key}: shape {tuple(value.shape)} in the checkpoint, but {model_name}'s {name} "
                f"has {tuple(ours[name].shape)} (a checkpoint of another configuration?)"
            )
        converted[name], source[name] = value, key
    if unknown:
        raise ValueError(f"official keys without a counterpart in {model_name}: {unknown}")
    missing = [name for name in ours if name not in converted]
    if surplus or missing:
        raise ValueError(
            f"official checkpoint does not fit this {model_name} (a checkpoint of another configuration?): "
            f"official keys beyond this model: {surplus}; {model_name} keys the checkpoint lacks: {missing}"
        )
    return converted


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
