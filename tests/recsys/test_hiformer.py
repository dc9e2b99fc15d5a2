"""Hiformer's layers against hand-written references: per-feature loop, pruning, low rank."""

from __future__ import annotations

import math

import torch

from recsys.models import CompositeProjection, HeterogeneousAttentionLayer, Hiformer, HiformerLayer

from .conftest import tiny_batch


def test_heterogeneous_attention_equals_per_feature_loop():
    torch.manual_seed(0)
    tokens, dim, heads, head_dim = 4, 6, 2, 3
    layer = HeterogeneousAttentionLayer(tokens, dim, heads, head_dim, ffn_dim=8, kernel="math").eval()
    x = torch.randn(2, tokens, dim)
    # reference: explicit loops over features i (query) and j (key/value), per head
    q = [x[:, i] @ layer.query.weight[i] for i in range(tokens)]
    k = [x[:, j] @ layer.key.weight[j] for j in range(tokens)]
    v = [x[:, j] @ layer.value.weight[j] for j in range(tokens)]
    outs = []
    for i in range(tokens):
        heads_out = []
        for h in range(heads):
            sl = slice(h * head_dim, (h + 1) * head_dim)
            logits = torch.stack([(q[i][:, sl] * k[j][:, sl]).sum(-1) / math.sqrt(head_dim) for j in range(tokens)], -1)
            w = logits.softmax(-1)
            heads_out.append(sum(w[:, j : j + 1] * v[j][:, sl] for j in range(tokens)))
        o = torch.cat(heads_out, -1) @ layer.out.weight[i] + layer.out.bias[i]
        h1 = layer.norm1(x[:, i] + o)
        f = torch.relu(h1 @ layer.ffn_in.weight[i] + layer.ffn_in.bias[i]) @ layer.ffn_out.weight[i] + layer.ffn_out.bias[i]
        outs.append(layer.norm2(h1 + f))
    torch.testing.assert_close(layer(x), torch.stack(outs, 1), atol=1e-5, rtol=1e-5)


def test_block_diagonal_composite_projection_is_heterogeneous():
    torch.manual_seed(1)
    tokens, dim, width = 3, 4, 5
    het = HeterogeneousAttentionLayer(tokens, dim, 1, width, ffn_dim=4)
    comp = CompositeProjection(tokens, dim, width)
    with torch.no_grad():
        comp.weight.copy_(torch.block_diag(*het.query.weight))
    x = torch.randn(3, tokens, dim)
    torch.testing.assert_close(comp(x), het.query(x))


def test_pruned_last_layer_gives_the_same_task_token_output(tiny_layout):
    torch.manual_seed(0)
    for layer in ("hiformer", "heterogeneous"):
        model = Hiformer(embed_dim=8, num_layers=2, head_dim=4, num_task_tokens=2, layer=layer, layout=tiny_layout).eval()
        batch = tiny_batch(tiny_layout)
        full = model.encode(batch, prune_last_layer=False)
        pruned = model.encode(batch, prune_last_layer=True)
        assert pruned.shape == (8, 2, 8)
        torch.testing.assert_close(pruned, full, atol=1e-6, rtol=1e-6)
    single = HiformerLayer(5, 8, 2, 4, 16).eval()
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(single(x, queries=1), single(x)[:, :1], atol=1e-6, rtol=1e-6)


def test_low_rank_with_full_rank_reproduces_the_full_projection():
    torch.manual_seed(0)
    tokens, dim, width = 3, 4, 6
    full = CompositeProjection(tokens, dim, width)
    rank = tokens * dim  # 12 = full rank of a (12, 18) matrix
    low = CompositeProjection(tokens, dim, width, rank=rank)
    u, s, vh = torch.linalg.svd(full.weight.detach(), full_matrices=False)
    with torch.no_grad():
        low.left.copy_(u * s)
        low.right.copy_(vh)
    x = torch.randn(5, tokens, dim)
    torch.testing.assert_close(low(x), full(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(low(x, first=1), full(x, first=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(low.full_weight(), full.weight, atol=1e-5, rtol=1e-5)
    # a truncated rank cannot: the rank-2 projection differs
    low2 = CompositeProjection(tokens, dim, width, rank=2)
    with torch.no_grad():
        low2.left.copy_((u * s)[:, :2])
        low2.right.copy_(vh[:2])
    assert (low2(x) - full(x)).abs().max() > 1e-3


def test_low_rank_hiformer_has_fewer_parameters(tiny_layout):
    full = Hiformer(layout=tiny_layout)
    low = Hiformer(rank=4, prune_last_layer=True, layout=tiny_layout)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(low) < count(full)
