"""Every CTR model: shapes, lazy build, and memorizing a tiny batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recsys.models import (
    DNN,
    FM,
    AutoInt,
    DCNv2,
    FieldLayout,
    FieldTransformer,
    Hiformer,
    LogisticRegression,
)

from .conftest import tiny_batch

MODELS = {
    "lr": lambda: LogisticRegression(),
    "fm": lambda: FM(embed_dim=8),
    "dnn": lambda: DNN(embed_dim=8, hidden_dims=(32, 32)),
    "dcnv2": lambda: DCNv2(embed_dim=8, cross_layers=2, hidden_dims=(32,)),
    "dcnv2_parallel_lowrank": lambda: DCNv2(embed_dim=8, cross_layers=2, hidden_dims=(32,), structure="parallel", rank=4),
    "autoint": lambda: AutoInt(embed_dim=8, num_layers=2, head_dim=8),
    "transformer": lambda: FieldTransformer(embed_dim=8, num_layers=1, head_dims=(16,)),
    "hiformer": lambda: Hiformer(embed_dim=8, num_layers=1, head_dim=4, head_dims=(16,)),
    "hiformer_fast": lambda: Hiformer(embed_dim=8, num_layers=2, head_dim=4, rank=4, prune_last_layer=True, head_dims=(16,)),
    "heterogeneous": lambda: Hiformer(embed_dim=8, num_layers=1, head_dim=4, layer="heterogeneous", head_dims=(16,)),
}

# Adam step size of the memorization test. An attention score is a product of trained matrices (four
# with low-rank composite projections), so at lr=0.05 a few steps grow the scores to hundreds, the
# softmax saturates and its gradient vanishes: hiformer_fast then stalled at a loss of 0.33-0.69 on
# 4-5 of 10 seeds, and which seeds depended on the BLAS summation order. At 0.01 (still 10x the
# package's CTR protocol) every attention model ends below 1e-3 on seeds 0-9. LogisticRegression and
# FM have no softmax to saturate and only move as far as Adam's bounded steps carry them in 150
# steps, so they get a larger one.
LEARNING_RATE = {"lr": 0.1, "fm": 0.1}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_memorizes_a_tiny_batch(name):
    torch.manual_seed(0)
    # field "row" is unique per row, so even LR can separate 16 random labels
    layout = FieldLayout(categorical=(17, 4, 3), multi_valued=(5,), numeric=1, names=("row", "a", "b", "t", "x"))
    batch = tiny_batch(layout, rows=16, seed=1)
    batch["categorical"][:, 0] = torch.arange(1, 17)
    model = MODELS[name]()
    assert not model.built
    model.build(layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE.get(name, 0.01))
    first = F.binary_cross_entropy_with_logits(model(batch), batch["label"]).item()
    for _ in range(150):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(batch), batch["label"])
        loss.backward()
        optimizer.step()
    model.eval()
    logits = model(batch)
    assert logits.shape == (16,)
    assert F.binary_cross_entropy_with_logits(logits, batch["label"]).item() < min(0.1, first / 4)
    assert ((logits > 0).float() == batch["label"]).all()


def test_build_rejects_a_different_layout(tiny_layout):
    model = DNN(layout=tiny_layout)
    model.build(tiny_layout)  # same layout: no-op
    with pytest.raises(ValueError, match="was built for"):
        model.build(FieldLayout(categorical=(3,), names=("a",)))


def test_fm_pairwise_term_equals_explicit_sum(tiny_layout):
    torch.manual_seed(0)
    model = FM(embed_dim=4, layout=tiny_layout)
    batch = tiny_batch(tiny_layout, rows=5)
    v = model.embedding(batch)
    explicit = sum((v[:, i] * v[:, j]).sum(-1) for i in range(v.shape[1]) for j in range(i + 1, v.shape[1]))
    expected = model.linear(batch).sum((1, 2)) + explicit + model.bias
    torch.testing.assert_close(model(batch), expected, atol=1e-6, rtol=1e-6)


def test_dcnv2_cross_layer_formula(tiny_layout):
    torch.manual_seed(0)
    model = DCNv2(embed_dim=4, cross_layers=1, hidden_dims=(), layout=tiny_layout)
    batch = tiny_batch(tiny_layout, rows=3)
    x0 = model.embedding(batch).flatten(1)
    lin = model.cross[0].weight
    x1 = x0 * (x0 @ lin.weight.T + lin.bias) + x0
    torch.testing.assert_close(model(batch), model.head(x1).squeeze(-1))
