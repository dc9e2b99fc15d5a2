"""Official LLFormer checkpoints (TaoWangzj/LLFormer) -> `vision.models.llformer.LLFormer`.

Imported at the bottom of `vision/models/llformer.py`, so the converter is registered whenever
LLFormer is: `core.official.load_official_state_dict(LLFormer(), "model_bestPSNR.pth")`.
"""

from __future__ import annotations

from torch import Tensor

from core.official import official_converter, rename_keys
from vision.models.llformer import LLFormer

# Official transformer-block stages (`nn.Sequential`s of `TransformerBlock`) -> ours.
_STAGES = {
    "encoder_1": "encoder.0", "encoder_2": "encoder.1", "encoder_3": "encoder.2", "latent": "latent",
    "decoder_level1_0": "level1", "decoder_level2_0": "level2", "decoder_level3_0": "level3",
    "decoder_level4": "level4", "decoder_level3_1": "decoder3", "decoder_level2_1": "decoder2",
    "decoder_level1_1": "decoder1",
    "refinement_1": "refinement.0", "refinement_2": "refinement.1", "refinement_3": "refinement.2",
}
_P = r"\.(?P<p>weight|bias)"
_AXIS = r"attn\.(?P<a>row|col)_att\."
# Inside one `TransformerBlock` -> `AxisTransformerBlock`.
_BLOCK = (
    (r"norm(?P<n>[12])\.body" + _P, r"norm\g<n>.\g<p>"),
    (_AXIS + "q1" + _P, r"attn.\g<a>.qkv.\g<p>"),
    (_AXIS + "q2" + _P, r"attn.\g<a>.qkv_dw1.\g<p>"),
    (_AXIS + "q3" + _P, r"attn.\g<a>.qkv_dw2.\g<p>"),
    (_AXIS + "fac", r"attn.\g<a>.temperature"),
    (_AXIS + "fin" + _P, r"attn.\g<a>.project_out.\g<p>"),
    (r"ffn\.(?P<c>project_in|dwconv|project_out)" + _P, r"ffn.\g<c>.\g<p>"),
)
_FUSION = r"\.(?P<r>temperature|(qkv|qkv_dwconv|project_out)\.(weight|bias))"
_RULES = tuple(
    (rf"{official}\.(?P<i>\d+)\.{pattern}", rf"{ours}.\g<i>.{replacement}")
    for official, ours in _STAGES.items()
    for pattern, replacement in _BLOCK
) + (
    (r"patch_embed\.proj" + _P, r"patch_embed.\g<p>"),
    (r"down_(?P<k>[1-4])\.body\.0\.weight", r"down\g<k>.body.0.weight"),
    (r"up4_3\.body\.0\.weight", "up4.body.0.weight"),
    (r"up3_2\.body\.0\.weight", "up3.body.0.weight"),
    (r"up2_1\.body\.0\.weight", "up2.body.0.weight"),
    (r"up2_0\.body\.0\.weight", "up1.body.0.weight"),
    (r"coefficient_4_3", "skip3.weight"),
    (r"skip_4_3" + _P, r"skip3.proj.\g<p>"),
    (r"coefficient_3_2", "skip2.weight"),
    (r"skip_3_2" + _P, r"skip2.proj.\g<p>"),
    (r"coefficient_2_1", "skip1.weight"),
    (r"skip_1_0" + _P, r"skip1.proj.\g<p>"),  # the official forward applies skip_1_0 at level 1
    (r"coefficient_1_0", "skip0.weight"),
    (r"layer_fussion" + _FUSION, r"encoder_fusion.\g<r>"),
    (r"conv_fuss" + _P, r"encoder_fusion.reduce.\g<p>"),
    (r"layer_fussion_2" + _FUSION, r"refinement_fusion.\g<r>"),
    (r"conv_fuss_2" + _P, r"refinement_fusion.reduce.\g<p>"),
    (r"output" + _P, r"output.\g<p>"),
)
# Declared by the official `LLFormer.__init__` but never used in its forward.
_DROP = (r"coefficient", r"skip_2_1" + _P)


@official_converter(LLFormer)
def convert_official_llformer(official: dict[str, Tensor], model: LLFormer) -> dict[str, Tensor]:
    """Map an official LLFormer state dict (`state_dict` of the released `.pth` files) onto `model`'s.

    The official `model/LLFormer.py` names, and ours (layouts are identical; only names differ):

    - Stages of transformer blocks: `encoder_1/2/3` -> `encoder.0/1/2`, `latent`,
      `decoder_level1_0/2_0/3_0`, `decoder_level4` -> `level1/2/3/4`, `decoder_level3_1/2_1/1_1` ->
      `decoder3/2/1`, `refinement_1/2/3` -> `refinement.0/1/2`. Inside a block: `norm1/2.body`
      (`WithBias_LayerNorm` over channels) -> `norm1/2`; the axis attention `attn.row_att` /
      `attn.col_att` -> `attn.row` / `attn.col` with `q1` (1x1 qkv conv), `q2`, `q3` (depthwise) ->
      `qkv`, `qkv_dw1`, `qkv_dw2`, `fac` -> `temperature`, `fin` -> `project_out`; `ffn` unchanged.
    - `patch_embed.proj` -> `patch_embed`; `down_1..4` -> `down1..4`; `up4_3`, `up3_2`, `up2_1`,
      `up2_0` -> `up4`, `up3`, `up2`, `up1`.
    - Weighted skips: `coefficient_4_3` / `skip_4_3` -> `skip3.weight` / `skip3.proj`,
      `coefficient_3_2` / `skip_3_2` -> `skip2`, `coefficient_2_1` -> `skip1.weight` with
      `skip_1_0` -> `skip1.proj` (the official forward convolves level 1 with `skip_1_0`),
      `coefficient_1_0` -> `skip0.weight` (no conv at level 0).
    - Cross-layer fusion: `layer_fussion` (`LAM_Module_v2`) + `conv_fuss` -> `encoder_fusion` and
      its `reduce`; `layer_fussion_2` + `conv_fuss_2` -> `refinement_fusion`.
    - Dropped: `coefficient` (4, 2, 8 * dim) and `skip_2_1`, which the official `__init__` creates but
      its forward never uses (the 2,048 unused weights of the official count).

    Only `LayerNorm_type='WithBias'` (the released configuration) loads: a `BiasFree` checkpoint
    lacks the norms' biases and is refused naming them. Build `model` with the checkpoint's `dim`,
    `num_blocks`, `num_refinement_blocks`, `heads`, `ffn_expansion` and `bias=False` (the official
    patch embedding never has a bias); `residual` is the official `skip` flag, not in the weights.
    """
    return rename_keys(official, _RULES, model, drop=_DROP)
