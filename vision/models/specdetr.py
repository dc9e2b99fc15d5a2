"""SpecDETR (Li et al., "SpecDETR: A Transformer-based Hyperspectral Point Object Detection Network", ISPRS P&RS 2025).

Each pixel's spectrum is a token: a 1x1 projection to `embed_dim` (LayerNorm, no downsampling) plus
the scene's global mean token as a second level; an encoder of self-excited sub-pixel-scale
(deformable) attention layers; DINO-style two-stage query selection (every pixel token proposes a
small box, the `num_queries` best-scored proposals seed the decoder); a decoder of deformable
cross-attention layers with iterative box refinement and a prediction head per layer (auxiliary
losses); contrastive denoising queries during training. The one-to-many Hungarian assignment and the
losses are `vision.detection.SetCriterion`; at inference the last layer's top scores go through
class-agnostic NMS (IoU 0.01: point objects never overlap).

Follows the official configuration `configs/specdetr/SpecDETR_SPOD_100e.py` (ZhaoxuLi123/SpecDETR):
embed 256, 6 + 6 layers, 8 heads, 4 points on 2 levels, FFN 8 x embed, 900 queries, content queries
initialized to ones, candidate boxes 0.01 of the image, CDN with label-noise scale 0.5, box-noise
scale 1.5 and 200 denoising queries, about 16M parameters. The official backbone's LayerNorm
projection and the detached global-mean level are kept; the official 0.1 learning-rate multiplier of
the projection is not (one optimizer group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torchvision.ops import nms

from core.attention import Kernel
from vision.detection import Detections, box_cxcywh_to_xyxy, box_xyxy_to_cxcywh
from vision.flip_ensemble import flip_ensemble
from vision.models.specdetr_blocks import (
    DeformableAttention,
    SpecDETRDecoderLayer,
    SpecDETREncoderLayer,
    box_position_code,
    inverse_sigmoid,
    sine_position_code,
)


@dataclass
class DETROutput:
    """What SpecDETR's forward returns.

    Attributes:
        logits: `(decoder_layers, b, dn + queries, classes)` class logits of every decoder layer.
        boxes: `(decoder_layers, b, dn + queries, 4)` normalized cx, cy, w, h.
        enc_logits: `(b, queries, classes)` logits of the selected two-stage proposals.
        enc_boxes: `(b, queries, 4)` their boxes.
        pixel_logits: `(b, classes, H, W)` the encoder's class logits at every pixel (the score map).
        num_denoising: leading denoising queries in `logits` / `boxes` (0 at inference).
        denoising_groups: denoising groups among them.
        image_size: `(H, W)` of the input.
    """

    logits: Tensor
    boxes: Tensor
    enc_logits: Tensor | None
    enc_boxes: Tensor | None
    pixel_logits: Tensor
    num_denoising: int
    denoising_groups: int
    image_size: tuple[int, int]


class SpecDETR(nn.Module):
    """SpecDETR: pixel-token encoder, two-stage query selection, refining decoder, denoising queries.

    Args:
        in_channels: spectral bands of the input (paper: 30, after averaging adjacent bands).
        num_classes: object classes (SPOD: 8).
        embed_dim: token width (paper: 256).
        num_encoder_layers: encoder depth (paper: 6).
        num_decoder_layers: decoder depth (paper: 6); each layer has its own prediction head.
        num_heads: heads of every attention (paper: 8).
        num_points: deformable sampling points per head and level (paper: 4).
        ffn_ratio: FFN inner width over `embed_dim` (paper: 8).
        num_queries: decoder queries chosen from the pixel proposals (paper: 900; at most H x W are used).
        candidate_box_size: side of each pixel's initial proposal box, as a fraction of the image
            (paper: 0.01 on 128-pixel SPOD images, about 1.3 pixels).
        position_temperature: temperature of the encoder's sine position code (paper: 20).
        denoising: train with contrastive denoising queries (paper: True).
        num_denoising_queries: denoising queries per batch; groups = this // the batch's most
            targets per image (paper: 200).
        label_noise_scale: CDN centre noise, as a fraction of half the box (paper: 0.5); negatives
            are shifted by 0.5-1 x this.
        box_noise_scale: CDN size noise, as a fraction of half the box (paper: 1.5).
        decoder_self_attention: add query self-attention to the decoder (DINO has it; SpecDETR
            drops it, so the default is False).
        kernel: attention kernel of that self-attention (`core.attention.attention`; logged as the
            run's kernel tag).
        dropout: dropout in attention outputs and FFNs (paper: 0).
        max_detections: top scores kept per image before NMS (paper: 300).
        nms_iou: IoU of class-agnostic NMS at inference (paper: 0.01).
        test_time_augment: detect on the 8 flips / transposes of the input and fuse their boxes per
            class (`vision.flip_ensemble`; then no class-agnostic NMS). Not the paper's: an addition
            of this suite, off by default (README, "Benchmark (hyperspectral detection)").
    """

    role: ClassVar[str] = "model"

    def __init__(
        self, in_channels: int = 30, num_classes: int = 8, embed_dim: int = 256, num_encoder_layers: int = 6,
        num_decoder_layers: int = 6, num_heads: int = 8, num_points: int = 4, ffn_ratio: int = 8, num_queries: int = 900,
        candidate_box_size: float = 0.01, position_temperature: float = 20.0, denoising: bool = True,
        num_denoising_queries: int = 200, label_noise_scale: float = 0.5, box_noise_scale: float = 1.5,
        decoder_self_attention: bool = False, kernel: Kernel = "auto", dropout: float = 0.0, max_detections: int = 300,
        nms_iou: float = 0.01, test_time_augment: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"SpecDETR: embed_dim must be even (sine position code); got {embed_dim}")
        self.in_channels, self.num_classes, self.embed_dim = in_channels, num_classes, embed_dim
        self.num_queries, self.candidate_box_size = num_queries, candidate_box_size
        self.position_temperature = position_temperature
        self.denoising, self.num_denoising_queries = denoising, num_denoising_queries
        self.label_noise_scale, self.box_noise_scale = label_noise_scale, box_noise_scale
        self.kernel, self.max_detections, self.nms_iou = kernel, max_detections, nms_iou
        self.test_time_augment = test_time_augment
        self.num_levels = 2  # the pixel map and the global mean token
        ffn_dim = ffn_ratio * embed_dim
        self.embed = nn.Conv2d(in_channels, embed_dim, kernel_size=1)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.level_embed = nn.Parameter(torch.empty(self.num_levels, embed_dim))
        self.encoder = nn.ModuleList(
            SpecDETREncoderLayer(embed_dim, num_heads, self.num_levels, num_points, ffn_dim, dropout)
            for _ in range(num_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            SpecDETRDecoderLayer(embed_dim, num_heads, self.num_levels, num_points, ffn_dim, dropout,
                                 self_attention=decoder_self_attention, kernel=kernel)
            for _ in range(num_decoder_layers)
        )
        self.ref_point_head = nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        self.decoder_norm = nn.LayerNorm(embed_dim)
        self.memory_proj = nn.Linear(embed_dim, embed_dim)
        self.memory_norm = nn.LayerNorm(embed_dim)
        # one head per decoder layer, and the last for the encoder's proposals
        self.class_heads = nn.ModuleList(nn.Linear(embed_dim, num_classes) for _ in range(num_decoder_layers + 1))
        self.box_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim), nn.ReLU(),
                          nn.Linear(embed_dim, 4))
            for _ in range(num_decoder_layers + 1)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official init: Xavier for the transformer's matrices, deformable attention's own init,
        class biases at prior 0.01, zero last box layers, normal level embeddings."""
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for module in self.modules():
            if isinstance(module, DeformableAttention):
                module.reset_parameters()
        nn.init.xavier_uniform_(self.memory_proj.weight)
        nn.init.normal_(self.level_embed)
        prior = -torch.log(torch.tensor((1 - 0.01) / 0.01)).item()
        for head in self.class_heads:
            nn.init.constant_(head.bias, prior)
        for head in self.box_heads:
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, cube: Tensor, targets: list[dict[str, Tensor]] | None = None) -> DETROutput:
        """Detect in `cube (b, in_channels, H, W)`.

        `targets` (training, for the denoising queries): per image `boxes (n, 4)` x0 y0 x1 y1 in
        pixels and `labels (n,)`.
        """
        if cube.dim() != 4 or cube.shape[1] != self.in_channels:
            raise ValueError(f"SpecDETR expects (batch, {self.in_channels}, H, W); got {tuple(cube.shape)}")
        b, _, h, w = cube.shape
        memory, shapes = self.encode(cube)
        # two-stage selection: every pixel token (not the global one) proposes a box
        proposals = self.pixel_proposals(h, w, cube.device)
        selected = self.memory_norm(self.memory_proj(memory[:, : h * w]))
        enc_logits_all = self.class_heads[-1](selected)
        enc_coords_all = self.box_heads[-1](selected) + proposals
        k = min(self.num_queries, h * w)
        top = enc_logits_all.max(-1).values.topk(k, dim=1).indices
        enc_logits = torch.gather(enc_logits_all, 1, top[..., None].expand(-1, -1, self.num_classes))
        enc_coords = torch.gather(enc_coords_all, 1, top[..., None].expand(-1, -1, 4))
        reference = enc_coords.detach()
        query = memory.new_ones(b, k, self.embed_dim)
        num_dn, groups, attn_mask = 0, 0, None
        if self.training and self.denoising and targets is not None:
            dn_query, dn_reference, groups = self.denoising_queries(targets, (h, w), memory)
            num_dn = dn_query.shape[1]
            if num_dn:
                query = torch.cat([dn_query, query], 1)
                reference = torch.cat([dn_reference, reference], 1)
                attn_mask = denoising_attention_mask(num_dn, groups, k, cube.device)
        hidden, references = self.decode(query, memory, reference.sigmoid(), shapes, attn_mask)
        logits = torch.stack([head(hs) for head, hs in zip(self.class_heads, hidden, strict=False)])
        boxes = torch.stack([
            (head(hs) + inverse_sigmoid(ref)).sigmoid() for head, hs, ref in zip(self.box_heads, hidden, references, strict=False)
        ])
        pixel_logits = enc_logits_all.transpose(1, 2).reshape(b, self.num_classes, h, w)
        return DETROutput(logits, boxes, enc_logits, enc_coords.sigmoid(), pixel_logits, num_dn, groups, (h, w))

    def encode(self, cube: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        """Pixel tokens and the global mean token through the encoder: `(b, H * W + 1, embed_dim)` and the level shapes."""
        b, _, h, w = cube.shape
        pixels = self.embed_norm(self.embed(cube).flatten(2).transpose(1, 2))  # (b, HW, d)
        global_token = pixels.mean(1, keepdim=True).detach()
        tokens = torch.cat([pixels, global_token], 1)
        half = self.embed_dim // 2
        pos = torch.cat([
            sine_position_code(h, w, half, self.position_temperature, cube.device) + self.level_embed[0],
            sine_position_code(1, 1, half, self.position_temperature, cube.device) + self.level_embed[1],
        ])[None]
        shapes = [(h, w), (1, 1)]
        reference = self.encoder_reference(h, w, cube.device)[None].expand(b, -1, -1)
        reference = reference[:, :, None].expand(-1, -1, self.num_levels, -1)
        for layer in self.encoder:
            tokens = layer(tokens, pos, reference, shapes)
        return tokens, shapes

    @staticmethod
    def encoder_reference(h: int, w: int, device: torch.device) -> Tensor:
        """Each token's reference point `(H * W + 1, 2)`: its pixel centre normalized, (0.5, 0.5) for the global token."""
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                                torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
        points = torch.stack([(xs.reshape(-1) + 0.5) / w, (ys.reshape(-1) + 0.5) / h], -1)
        return torch.cat([points, points.new_tensor([[0.5, 0.5]])])

    def pixel_proposals(self, h: int, w: int, device: torch.device) -> Tensor:
        """Each pixel's initial proposal in logit space `(H * W, 4)`: its centre and a `candidate_box_size` square."""
        centres = self.encoder_reference(h, w, device)[:-1]
        size = torch.full_like(centres, self.candidate_box_size)
        return inverse_sigmoid(torch.cat([centres, size], -1), eps=1e-12)

    def decode(self, query: Tensor, memory: Tensor, reference: Tensor, shapes: list[tuple[int, int]],
               attn_mask: Tensor | None) -> tuple[list[Tensor], list[Tensor]]:
        """Refine `reference (b, q, 4)` boxes layer by layer; returns each layer's normed queries and its input boxes."""
        hidden, inputs = [], [reference]
        for layer, head in zip(self.decoder, self.box_heads, strict=False):
            pos = self.ref_point_head(box_position_code(reference, self.embed_dim // 2))
            query = layer(query, pos, memory, reference[:, :, None].expand(-1, -1, self.num_levels, -1), shapes, attn_mask)
            refined = (head(query) + inverse_sigmoid(reference, eps=1e-3)).sigmoid()
            hidden.append(self.decoder_norm(query))
            inputs.append(refined)
            reference = refined.detach()
        # the head of layer i refines the input box of layer i, kept undetached so that its
        # gradient also reaches the layer that produced it (DINO's "look forward twice")
        return hidden, inputs[:-1]

    def denoising_queries(self, targets: list[dict[str, Tensor]], image_size: tuple[int, int],
                          like: Tensor) -> tuple[Tensor, Tensor, int]:
        """Contrastive denoising queries (DINO's CDN as SpecDETR configures it).

        Per group, each ground truth gives a positive query (centre moved by up to
        `label_noise_scale` x half its size, size changed by up to `box_noise_scale` x half its
        size) and a negative one (the same size noise, centre moved by 1-2 x `label_noise_scale` x
        half its size, so it lies farther off and must learn background).
        Content queries are ones (the paper's initialization); images with fewer targets are
        padded. Returns content `(b, dn, dim)`, boxes in logit space `(b, dn, 4)`, groups.
        """
        h, w = image_size
        scale = like.new_tensor([w, h, w, h])
        counts = [len(t["labels"]) for t in targets]
        most = max(counts, default=0)
        if most == 0:
            return like.new_zeros(len(targets), 0, self.embed_dim), like.new_zeros(len(targets), 0, 4), 0
        groups = max(1, self.num_denoising_queries // most)
        per_group = 2 * most
        boxes = like.new_zeros(len(targets), groups * per_group, 4)
        for b, target in enumerate(targets):
            n = counts[b]
            if n == 0:
                continue
            gt = box_xyxy_to_cxcywh(target["boxes"].to(like) / scale).repeat(2 * groups, 1)  # groups x (pos, neg)
            wh = gt[:, 2:].repeat(1, 2)
            noise = torch.rand_like(gt) * 2 - 1
            noise[:, :2] *= self.label_noise_scale
            noise[:, 2:] *= self.box_noise_scale
            noisy = gt + noise * wh / 2
            negative = torch.zeros(2 * groups, n, dtype=torch.bool, device=like.device)
            negative[1::2] = True
            negative = negative.reshape(-1)
            sign = torch.randint_like(gt, 0, 2) * 2 - 1
            shift = (self.label_noise_scale + torch.rand_like(gt) * self.label_noise_scale) * sign
            noisy[negative, :2] = gt[negative, :2] + shift[negative, 2:] * gt[negative, 2:] * 0.5
            noisy = box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(noisy).clamp(0.0, 1.0))
            slots = (torch.arange(2 * groups, device=like.device)[:, None] * most + torch.arange(n, device=like.device)).reshape(-1)
            boxes[b, slots] = inverse_sigmoid(noisy, eps=1e-3)
        return like.new_ones(len(targets), groups * per_group, self.embed_dim), boxes, groups

    @torch.no_grad()
    def detect(self, outputs: DETROutput, cube: Tensor | None = None) -> list[Detections]:
        """Detections per image: top `max_detections` (query, class) scores of the last layer, then class-agnostic NMS.

        With `test_time_augment` and the `cube` of `outputs`, the fused detections of its 8 views instead.
        """
        if self.test_time_augment and cube is not None:
            return flip_ensemble(lambda view: self.top_detections(self(view), suppress=False), cube,
                                 identity=self.top_detections(outputs, suppress=False))
        return self.top_detections(outputs)

    def top_detections(self, outputs: DETROutput, suppress: bool = True) -> list[Detections]:
        """The last layer's top `max_detections` (query, class) scores per image, class-agnostic NMS if `suppress`."""
        h, w = outputs.image_size
        logits = outputs.logits[-1][:, outputs.num_denoising:]
        boxes = box_cxcywh_to_xyxy(outputs.boxes[-1][:, outputs.num_denoising:]) * logits.new_tensor([w, h, w, h])
        out = []
        for lg, bx in zip(logits, boxes, strict=True):
            scores, index = lg.sigmoid().flatten().topk(min(self.max_detections, lg.numel()))
            labels, query = index % self.num_classes, index // self.num_classes
            chosen = bx[query]
            chosen[:, 0::2] = chosen[:, 0::2].clamp(0, w)
            chosen[:, 1::2] = chosen[:, 1::2].clamp(0, h)
            keep = nms(chosen, scores, self.nms_iou) if suppress else torch.arange(len(scores), device=scores.device)
            out.append(Detections(chosen[keep].cpu(), scores[keep].cpu(), labels[keep].cpu()))
        return out

    def pixel_scores(self, outputs: DETROutput) -> Tensor:
        """One target score per pixel `(b, H, W)`: the encoder's highest class probability there."""
        return outputs.pixel_logits.sigmoid().amax(1)


def denoising_attention_mask(num_denoising: int, groups: int, num_queries: int, device: torch.device) -> Tensor:
    """DINO's query mask `(dn + queries, dn + queries)`, True = may attend: matching queries never see
    denoising ones, and each denoising group sees only itself and the matching queries."""
    total = num_denoising + num_queries
    attend = torch.ones(total, total, dtype=torch.bool, device=device)
    attend[num_denoising:, :num_denoising] = False
    size = num_denoising // groups
    for g in range(groups):
        start, stop = g * size, (g + 1) * size
        attend[start:stop, :start] = False
        attend[start:stop, stop:num_denoising] = False
    return attend
