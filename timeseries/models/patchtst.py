"""PatchTST: patching, channel independence, RevIN, and a Transformer encoder.

Nie, Nguyen, Sinthong, Kalagnanam, "A Time Series is Worth 64 Words: Long-term Forecasting with
Transformers" (ICLR 2023). Each channel is forecast on its own by one shared network: the
instance-normalized series (RevIN, Kim et al. ICLR 2022) is cut into overlapping patches, each
patch is a token (linear projection + learned position), a Transformer encoder with BatchNorm
mixes the tokens, and a linear head maps the flattened tokens to the horizon; the normalization
is then undone. Defaults are PatchTST/42 on ETTh1 (seq_len 336, patch 16, stride 8: 42 patches).

The reference code also adds the previous layer's attention logits to the next layer's
("residual attention", RealFormer); the paper does not describe it, so it is off by default
(`residual_attention=False`: attention goes through `core.attention.MultiHeadAttention`, whose
kernel is selectable) and available for official checkpoints (`residual_attention=True`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention import Kernel, MultiHeadAttention
from core.attention.math_kernel import attention_scores, safe_softmax
from core.blocks import LearnedPositionalEncoding, make_ffn
from core.official import official_converter


class RevIN(nn.Module):
    """Reversible instance normalization (Kim et al., ICLR 2022) over the time axis, per series.

    Args:
        channels: channels (only used by the affine parameters).
        eps: added to the variance.
        affine: learn a per-channel scale and shift (off in PatchTST's ETTh1 setting).
    """

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def normalize(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`x: (batch, time, channels)` -> `(normalized x, mean, std)`; mean/std `(batch, 1, channels)`."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x, mean, std

    def denormalize(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """Undo `normalize` on a forecast `y: (batch, pred_len, channels)`."""
        if self.weight is not None:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class PatchTSTEncoderLayer(nn.Module):
    """Post-norm encoder layer with BatchNorm (or LayerNorm) over the model width.

    `h = norm1(x + drop(drop(attn(x))))`, `out = norm2(h + ffn(h))` (the reference code drops the
    attention output twice: in the projection and on the residual branch).

    Args:
        dim: model width. num_heads: heads. ffn_dim: FFN width. dropout: dropout (0.3 on ETTh1).
        attn_dropout: dropout on attention weights (0). norm: `batch` (paper) or `layer`.
        activation: FFN activation. kernel: attention kernel (unused with residual attention).
        residual_attention: add the previous layer's pre-softmax scores to this layer's (see
            `PatchTST`); the attention is then computed from explicit scores.
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attn_dropout: float,
        norm: Literal["batch", "layer"], activation: Literal["gelu", "relu"], kernel: Kernel,
        residual_attention: bool = False,
    ) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, num_heads, dropout=attn_dropout, kernel=kernel)
        self.residual_attention = residual_attention
        self.projection_dropout, self.residual_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm_kind = norm
        self.norm1 = nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim)
        self.norm2 = nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim)

    def _norm(self, norm: nn.Module, x: Tensor) -> Tensor:
        return norm(x.transpose(1, 2)).transpose(1, 2) if self.norm_kind == "batch" else norm(x)

    def forward(self, x: Tensor, prev_scores: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """`x: (batch, tokens, dim)` -> `(same shape, scores)`.

        With residual attention, `scores: (batch, heads, tokens, tokens)` are this layer's scaled
        logits plus `prev_scores` (None in the first layer), before the softmax: what the next layer
        adds to its own. Without, `prev_scores` must be None and `scores` is None.
        """
        if self.residual_attention:
            attended, scores = self._residual_attention(x, prev_scores)
        else:
            attended, scores = self.attention(x), None
        x = self._norm(self.norm1, x + self.residual_dropout(self.projection_dropout(attended)))
        return self._norm(self.norm2, x + self.ffn(x)), scores

    def _residual_attention(self, x: Tensor, prev_scores: Tensor | None) -> tuple[Tensor, Tensor]:
        """Multi-head attention from explicit scores, which the next layer needs (no kernel gives them)."""
        attn = self.attention
        q, k, v = attn.project(x)
        scores = attention_scores(q, k, mask=None, bias=prev_scores, causal=False, scale=attn.head_dim**-0.5)
        probs = F.dropout(safe_softmax(scores, maybe_empty=False), p=attn.dropout, training=self.training)
        return attn.merge(torch.matmul(probs, v)), scores


class PatchTST(nn.Module):
    """PatchTST/42 forecaster (supervised, channel-independent).

    Args:
        seq_len: look-back window (336).
        pred_len: horizon.
        channels: input (and output) channels; all share the same weights.
        patch_len: steps per patch (16).
        stride: steps between patch starts (8).
        pad_end: repeat the last value `stride` times before patching (one more patch, as in the paper).
        d_model: token width (16 on ETTh1).
        num_heads: heads (4 on ETTh1).
        num_layers: encoder depth (3).
        ffn_dim: FFN width (128 on ETTh1).
        dropout: dropout of tokens, attention output, FFN (0.3 on ETTh1).
        attn_dropout: dropout on attention weights (0).
        head_dropout: dropout before the linear head (0).
        norm: `batch` (BatchNorm, the paper's choice) or `layer`.
        activation: FFN activation (`gelu`).
        revin: reversible instance normalization (True).
        revin_affine: learnable RevIN scale/shift (False).
        kernel: attention kernel (`core.attention`); `auto` or `math` with `residual_attention`.
        residual_attention: RealFormer-style residual attention (He et al., 2020) as the official
            code does it (False). Each layer's scaled pre-softmax scores, after the previous
            layer's scores have been added to them, are passed on and added to the next layer's,
            so layer `l` attends with `softmax(sum_{j<=l} q_j k_j^T / sqrt(head_dim))`. The paper
            does not describe it, but the official supervised `Model` defaults to it
            (`res_attention=True`, which `exp_main.py` cannot turn off) and it adds no
            parameters: set True to reproduce official supervised checkpoints. The scores must
            be explicit, so attention runs through `core.attention.math_kernel`, not `kernel`.
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        seq_len: int = 336,
        pred_len: int = 96,
        channels: int = 7,
        patch_len: int = 16,
        stride: int = 8,
        pad_end: bool = True,
        d_model: int = 16,
        num_heads: int = 4,
        num_layers: int = 3,
        ffn_dim: int = 128,
        dropout: float = 0.3,
        attn_dropout: float = 0.0,
        head_dropout: float = 0.0,
        norm: Literal["batch", "layer"] = "batch",
        activation: Literal["gelu", "relu"] = "gelu",
        revin: bool = True,
        revin_affine: bool = False,
        kernel: Kernel = "auto",
        residual_attention: bool = False,
    ) -> None:
        super().__init__()
        if patch_len > seq_len or stride < 1:
            raise ValueError(f"need 1 <= stride and patch_len <= seq_len; got patch_len {patch_len}, stride {stride}, seq_len {seq_len}")
        if residual_attention and kernel not in ("auto", "math"):
            raise ValueError(
                f"residual_attention=True computes explicit attention scores (the math kernel); kernel={kernel!r} "
                "would be ignored: use kernel='auto' or 'math'"
            )
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels
        self.patch_len, self.stride, self.pad_end = patch_len, stride, pad_end
        self.num_patches = (seq_len - patch_len) // stride + 1 + (1 if pad_end else 0)
        self.kernel, self.residual_attention = kernel, residual_attention
        self.revin = RevIN(channels, affine=revin_affine) if revin else None
        self.patch_embedding = nn.Linear(patch_len, d_model)
        self.position = LearnedPositionalEncoding(d_model, self.num_patches)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(
            PatchTSTEncoderLayer(
                d_model, num_heads, ffn_dim, dropout, attn_dropout, norm, activation, kernel, residual_attention
            )
            for _ in range(num_layers)
        )
        self.head = nn.Sequential(nn.Flatten(start_dim=1), nn.Dropout(head_dropout), nn.Linear(self.num_patches * d_model, pred_len))

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`; the marks are ignored."""
        batch, _, channels = x.shape
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        series = x.transpose(1, 2)  # (batch, channels, seq_len)
        if self.pad_end:
            series = F.pad(series, (0, self.stride), mode="replicate")
        patches = series.unfold(-1, self.patch_len, self.stride)  # (batch, channels, num_patches, patch_len)
        tokens = self.dropout(self.position(self.patch_embedding(patches.flatten(0, 1))))  # channel independence
        scores = None  # stays None without residual attention
        for layer in self.encoder:
            tokens, scores = layer(tokens, scores)
        y = self.head(tokens).view(batch, channels, self.pred_len).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y


# Official PatchTST_supervised names (yuqinie98/PatchTST, layers/PatchTST_backbone.py) of each
# encoder-layer module, keyed by ours; the `.1` of the norms is the BatchNorm inside
# `nn.Sequential(Transpose, BatchNorm1d, Transpose)`, LayerNorm has none.
_OFFICIAL_LAYER_MODULES = {
    "attention.q_proj": "self_attn.W_Q",
    "attention.k_proj": "self_attn.W_K",
    "attention.v_proj": "self_attn.W_V",
    "attention.out_proj": "self_attn.to_out.0",
    "ffn.fc1": "ff.0",
    "ffn.fc2": "ff.3",
    "norm1": "norm_attn",
    "norm2": "norm_ffn",
}


def _official_name(name: str, norm: str) -> str:
    """The official checkpoint key (`model.` prefix included) of our state-dict key `name`."""
    module, _, leaf = name.rpartition(".")
    if name.startswith("revin."):
        return f"model.revin_layer.affine_{leaf}"
    if name == "position.table":
        return "model.backbone.W_pos"
    if module == "patch_embedding":
        return f"model.backbone.W_P.{leaf}"
    if module == "head.2":
        return f"model.head.linear.{leaf}"
    _, index, inner = module.split(".", 2)  # encoder.<i>.<module>
    official = _OFFICIAL_LAYER_MODULES[inner] + (".1" if norm == "batch" and inner.startswith("norm") else "")
    return f"model.backbone.encoder.layers.{index}.{official}.{leaf}"


@official_converter(PatchTST)
def convert_official_patchtst(official: dict[str, Tensor], model: PatchTST) -> dict[str, Tensor]:
    """Map a checkpoint of the official supervised PatchTST onto `model`'s state dict.

    The format is what `PatchTST_supervised/utils/tools.py` (`EarlyStopping.save_checkpoint`)
    writes, `torch.save(model.state_dict(), path + '/checkpoint.pth')` of `models/PatchTST.py`'s
    `Model`, so every key starts with `model.` (`module.model.` under DataParallel; the prefix
    `module.` is removed by `core.official.unwrap_state_dict`). The mapping:

    - `model.revin_layer.affine_weight/affine_bias` -> `revin.weight/bias` (present only when the
      official run had `--affine 1`; build the model with `revin_affine=True` then).
    - `model.backbone.W_P` -> `patch_embedding`; `model.backbone.W_pos` `(patch_num, d_model)` ->
      `position.table`, same layout.
    - per layer `model.backbone.encoder.layers.<i>.`: `self_attn.W_Q/W_K/W_V` -> `attention.q_proj/
      k_proj/v_proj` (same `(heads * head_dim, d_model)` layout, heads outermost), `self_attn.
      to_out.0` -> `attention.out_proj`, `ff.0`/`ff.3` -> `ffn.fc1`/`ffn.fc2`, `norm_attn.1`/
      `norm_ffn.1` -> `norm1`/`norm2` (weight, bias and the BatchNorm running mean/var and
      `num_batches_tracked`; `norm_attn`/`norm_ffn` without `.1` for `norm="layer"`).
    - `self_attn.sdp_attn.scale` is dropped: it is the fixed `head_dim ** -0.5` that our attention
      applies itself; a different value (a learned scale, `lsa=True`) is refused.
    - `model.head.linear` -> `head.2`. The official head flattens tokens as `(d_model, patch_num)`,
      ours as `(patch_num, d_model)`, so the weight's columns are permuted:
      `W.view(pred_len, d_model, patch_num).transpose(1, 2).reshape(pred_len, -1)`.

    Refused with a `ValueError` naming the key: `decomposition=1` checkpoints (`model_trend.*`,
    `model_res.*`: our PatchTST has no decomposition variant), `individual=1` heads
    (`model.head.linears.*`), any key without a counterpart, missing keys and wrong shapes.
    Not visible in a checkpoint and so not checkable: the official `Model` runs residual attention
    (`res_attention=True`, each layer's pre-softmax scores, the previous layer's included, added to
    the next layer's) unless built with `res_attention=False`, and `exp_main.py` always uses the
    default; it adds no parameters. Build the model with `residual_attention=True` for checkpoints
    that `exp_main.py` trained, `False` for `res_attention=False` ones (the self-supervised
    scripts' choice); the wrong setting loads silently and forecasts differently. Likewise
    `subtract_last=1` and `pre_norm=True` runs load but compute differently.
    """
    if any(k.startswith(("model_trend.", "model_res.")) for k in official):
        raise ValueError(
            "official PatchTST checkpoint was trained with decomposition=1 (keys model_trend.*, model_res.*); "
            "this PatchTST has no series-decomposition variant"
        )
    if any(k.startswith("model.head.linears.") for k in official):
        raise ValueError(
            "official PatchTST checkpoint has an individual head per channel (model.head.linears.*, individual=1); "
            "this PatchTST shares one head across channels"
        )
    layers = list(model.encoder)
    norm = layers[0].norm_kind if layers else "batch"
    remaining = dict(official)
    for i, layer in enumerate(layers):
        key = f"model.backbone.encoder.layers.{i}.self_attn.sdp_attn.scale"
        expected = layer.attention.head_dim**-0.5
        if key in remaining and abs(remaining[key].item() - expected) > 1e-6 * expected:
            raise ValueError(
                f"{key} = {remaining[key].item():.6g}, not head_dim ** -0.5 = {expected:.6g} "
                "(a learned scale, lsa=True): not supported"
            )
        remaining.pop(key, None)
    converted: dict[str, Tensor] = {}
    for name, ours in model.state_dict().items():
        key = _official_name(name, norm)
        if key not in remaining:
            hint = " (the official run had --affine 0: build the model with revin_affine=False)"
            hint = hint if name.startswith("revin.") else ""
            raise ValueError(f"official PatchTST checkpoint lacks {key} (for our {name}){hint}")
        value = remaining.pop(key)
        if value.shape != ours.shape:
            raise ValueError(
                f"{key}: shape {tuple(value.shape)} in the checkpoint, {name} needs {tuple(ours.shape)}"
            )
        if name == "head.2.weight":
            d_model = model.patch_embedding.out_features
            value = value.reshape(model.pred_len, d_model, model.num_patches).transpose(1, 2).reshape(ours.shape)
        converted[name] = value
    if remaining:
        hint = " (the official run had --affine 1: build the model with revin_affine=True)"
        hint = hint if any("revin_layer" in k for k in remaining) else ""
        raise ValueError(f"official PatchTST checkpoint keys without a counterpart in this model: {sorted(remaining)}{hint}")
    return converted
