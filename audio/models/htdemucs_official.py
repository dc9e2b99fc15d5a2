"""Official HT Demucs weights (facebookresearch/demucs, `demucs/htdemucs.py`) loaded into `HTDemucs`.

The demucs package's checkpoint files (e.g. `955717e8-8726e21a.th`) pickle the model's class and
arguments next to its weights; the weights are the `state` entry, a plain name -> tensor dict.
Extract it once with the demucs package installed (`torch.save(torch.load(path)["state"], out)`)
or pass a checkpoint saved as `{"state": ...}`; `core.official.load_official_state_dict(model,
path)` reads it with `torch.load(weights_only=True)` (no demucs class is unpickled) and calls the
converter below. Build `HTDemucs` with the checkpoint's configuration (the released `htdemucs` is
the default configuration; `sample_rate=44100, segment=7.8`).

What differs from the official names: the U-Net layers are the same (`encoder`, `tencoder`,
`decoder`, `tdecoder`, `freq_emb`, `channel_*sampler*`); in the transformer, `nn.MultiheadAttention`'s
packed `in_proj_weight`/`in_proj_bias` are split into our `q_proj`, `k_proj`, `v_proj`, `linear1`/
`linear2` become `ffn.fc1`/`ffn.fc2`, `gamma_1`/`gamma_2` become `scale1`/`scale2`, and the norms
are named by role: `norm1` -> `norm_q`, and `norm2` -> `norm_kv` in a cross-attention layer (the
key/value norm) but -> `norm_ffn` in a self-attention layer, whose FFN norm a cross layer calls `norm3`.
"""

from __future__ import annotations

import re

from torch import Tensor

from audio.models.htdemucs import HTDemucs
from core.official import official_converter, rename_keys

_LAYER = r"crosstransformer\.(?P<branch>layers|layers_t)\.(?P<i>\d+)\."

_RULES: list[tuple[str, str]] = [
    (r"(?P<k>(encoder|tencoder|decoder|tdecoder)\..+)", r"\g<k>"),
    (r"(?P<k>freq_emb\.embedding\.weight)", r"\g<k>"),
    (r"(?P<k>channel_(up|down)sampler(_t)?\.(weight|bias))", r"\g<k>"),
    (r"(?P<k>crosstransformer\.norm_in(_t)?\.(weight|bias))", r"\g<k>"),
    (_LAYER + r"(self_attn|cross_attn)\.(?P<p>[qkv]_proj|out_proj)\.(?P<w>weight|bias)",
     r"crosstransformer.\g<branch>.\g<i>.attn.\g<p>.\g<w>"),
    (_LAYER + r"linear(?P<n>[12])\.(?P<w>weight|bias)", r"crosstransformer.\g<branch>.\g<i>.ffn.fc\g<n>.\g<w>"),
    (_LAYER + r"gamma_(?P<n>[12])\.scale", r"crosstransformer.\g<branch>.\g<i>.scale\g<n>.scale"),
    (_LAYER + r"norm1\.(?P<w>weight|bias)", r"crosstransformer.\g<branch>.\g<i>.norm_q.\g<w>"),
    (_LAYER + r"norm_kv\.(?P<w>weight|bias)", r"crosstransformer.\g<branch>.\g<i>.norm_kv.\g<w>"),
    (_LAYER + r"norm_ffn\.(?P<w>weight|bias)", r"crosstransformer.\g<branch>.\g<i>.norm_ffn.\g<w>"),
    (_LAYER + r"norm_out\.(?P<w>weight|bias)", r"crosstransformer.\g<branch>.\g<i>.norm_out.\g<w>"),
]


def _unpack(official: dict[str, Tensor]) -> dict[str, Tensor]:
    """Split packed attention projections and name the layer norms by role (see the module docstring)."""
    cross_layers = {m.group(1) for k in official if (m := re.match(r"(crosstransformer\.layers(?:_t)?\.\d+)\.cross_attn\.", k))}
    out: dict[str, Tensor] = {}
    for key, value in official.items():
        packed = re.fullmatch(r"(.+_attn)\.in_proj_(weight|bias)", key)
        if packed:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                out[f"{packed.group(1)}.{name}.{packed.group(2)}"] = part
            continue
        norm = re.fullmatch(r"(crosstransformer\.layers(?:_t)?\.\d+)\.norm([23])\.(weight|bias)", key)
        if norm:
            layer, index, what = norm.groups()
            role = ("norm_kv" if index == "2" else "norm_ffn") if layer in cross_layers else "norm_ffn"
            if layer not in cross_layers and index == "3":
                raise ValueError(f"official {key}: a self-attention layer has no norm3")
            out[f"{layer}.{role}.{what}"] = value
            continue
        out[key] = value
    return out


@official_converter(HTDemucs)
def convert_official_htdemucs(official: dict[str, Tensor], model: HTDemucs) -> dict[str, Tensor]:
    """The official HT Demucs `state` dict renamed (and in_proj split) onto `model`'s keys; strict."""
    return rename_keys(_unpack(dict(official)), _RULES, model)
