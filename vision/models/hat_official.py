"""Official HAT checkpoints (XPixelGroup/HAT, BasicSR format) -> `vision.models.hat.HAT`.

Imported at the bottom of `vision/models/hat.py`, so the converter is registered whenever HAT is:
`core.official.load_official_state_dict(HAT(...), "HAT_SRx4_ImageNet-pretrain.pth")`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.attention import OverlappingWindowAttention
from core.official import official_converter, rename_keys
from vision.models.hat import HAT

_GROUP = r"layers\.(?P<g>\d+)\.residual_group\."
_BLOCK = _GROUP + r"blocks\.(?P<b>\d+)\."
_OURS_BLOCK = r"groups.\g<g>.blocks.\g<b>."
_P = r"\.(?P<p>weight|bias)"

# (official key, our key), first full match wins; see `convert_official_hat` for the why.
_RULES = (
    (r"conv_first" + _P, r"conv_first.\g<p>"),
    (r"patch_embed\.norm" + _P, r"embed_norm.\g<p>"),
    (_BLOCK + r"(?P<m>norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)" + _P, _OURS_BLOCK + r"\g<m>.\g<p>"),
    (_BLOCK + r"attn\.relative_position_bias_table", _OURS_BLOCK + "attn.relative_bias.table"),
    (_BLOCK + r"conv_block\.cab\.0" + _P, _OURS_BLOCK + r"cab.conv1.\g<p>"),
    (_BLOCK + r"conv_block\.cab\.2" + _P, _OURS_BLOCK + r"cab.conv2.\g<p>"),
    (_BLOCK + r"conv_block\.cab\.3\.attention\.1" + _P, _OURS_BLOCK + r"cab.excite.fc1.\g<p>"),
    (_BLOCK + r"conv_block\.cab\.3\.attention\.3" + _P, _OURS_BLOCK + r"cab.excite.fc2.\g<p>"),
    (_GROUP + r"overlap_attn\.(?P<m>norm1|norm2|mlp\.fc1|mlp\.fc2)" + _P, r"groups.\g<g>.overlap.\g<m>.\g<p>"),
    (_GROUP + r"overlap_attn\.(?P<m>qkv|proj)" + _P, r"groups.\g<g>.overlap.attn.\g<m>.\g<p>"),
    (_GROUP + r"overlap_attn\.relative_position_bias_table", r"groups.\g<g>.overlap.attn.relative_bias.table"),
    (r"layers\.(?P<g>\d+)\.conv" + _P, r"groups.\g<g>.conv.\g<p>"),
    (r"(?P<m>norm|conv_after_body|conv_before_upsample\.0|upsample\.\d+|conv_last)" + _P, r"\g<m>.\g<p>"),
)
# Buffers of the official HAT that our attention modules compute themselves.
_DROP = (r"relative_position_index_SA", r"relative_position_index_OCA")


def official_oca_shift(attn: OverlappingWindowAttention) -> int:
    """Cyclic shift from the official OCA bias table to ours: `(Mo - 2) * (M + Mo)`.

    For the offset `(dy, dx)` = key - query position inside the `M x M` / `Mo x Mo` windows, both
    tables have `span = M + Mo - 1` entries per axis. Ours is indexed by `(dy + M - 1) * span +
    (dx + M - 1)`, in `[0, span^2)`. The official `calculate_rpi_oca` adds `M - Mo + 1` instead of
    `M - 1`, so its index is ours minus `(Mo - 2) * (span + 1)` and is negative for the most negative
    offsets; PyTorch's negative indexing wraps those around the table. The same entries, read
    cyclically: `ours = torch.roll(official, (Mo - 2) * (span + 1), dims=0)`.
    """
    m, mo = attn.window_size, attn.overlap_size
    return (mo - 2) * (m + mo)


@official_converter(HAT)
def convert_official_hat(official: dict[str, Tensor], model: HAT) -> dict[str, Tensor]:
    """Map an official HAT state dict (`params_ema` of the released `.pth` files) onto `model`'s.

    The official `hat/archs/hat_arch.py` (BasicSR) names, and ours:

    - `conv_first`, `norm`, `conv_after_body`, `conv_before_upsample.0`, `upsample.<i>`, `conv_last`:
      the same names and layouts; `patch_embed.norm` (the LayerNorm after the shallow conv,
      `patch_norm=True`) -> `embed_norm`.
    - `layers.<g>.residual_group.blocks.<b>.` -> `groups.<g>.blocks.<b>.`: `norm1`, `norm2`,
      `attn.qkv` (one `(3 * dim, dim)` linear, q/k/v then heads, as ours), `attn.proj`, `mlp.fc1/fc2`
      unchanged; `attn.relative_position_bias_table` -> `attn.relative_bias.table` (the Swin index,
      identical to ours); the CAB `conv_block.cab.0` / `cab.2` -> `cab.conv1` / `cab.conv2` and its
      channel attention `cab.3.attention.1` / `attention.3` (1x1 convs of an `nn.Sequential`) ->
      torchvision's `SqueezeExcitation` `cab.excite.fc1` / `fc2`.
    - `layers.<g>.residual_group.overlap_attn.` -> `groups.<g>.overlap.`: `norm1`, `norm2`, `mlp`
      unchanged; `qkv`, `proj` -> `attn.qkv`, `attn.proj`; `relative_position_bias_table` ->
      `attn.relative_bias.table`, cyclically shifted (`official_oca_shift`: the official index
      wraps around the table through negative indexing, ours does not).
    - `layers.<g>.conv` (the `1conv` residual connection) -> `groups.<g>.conv`.
    - Dropped: the buffers `relative_position_index_SA` / `_OCA`, which our modules compute.

    Only the paper's configurations load: `upsampler='pixelshuffle'`, `resi_connection='1conv'`,
    `patch_norm=True`, `ape=False` (an `absolute_pos_embed` is refused as a key without a
    counterpart). Build `model` with the checkpoint's `embed_dim`, `depths`, `num_heads`,
    `window_size`, `compress_ratio`, `squeeze_factor`, `mlp_ratio` and `scale`; shapes that differ
    raise naming the key. `img_range`, `conv_scale` and `overlap_ratio` leave no trace in the
    weights beyond the table shape: keep the official values (1.0, 0.01, 0.5).
    """
    if not isinstance(model.conv_last, nn.Conv2d):
        raise ValueError(
            "official HAT checkpoints have the pixelshuffle upsampler (conv_before_upsample, upsample, conv_last); "
            "build HAT with upsampler='pixelshuffle' and upsample_features=64"
        )
    state = rename_keys(official, _RULES, model, drop=_DROP)
    for g, group in enumerate(model.groups):
        key = f"groups.{g}.overlap.attn.relative_bias.table"
        state[key] = torch.roll(state[key], official_oca_shift(group.overlap.attn), dims=0)
    return state
