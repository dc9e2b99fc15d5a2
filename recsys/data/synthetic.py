"""A click-log generator with a planted 3-way feature interaction: the embedded default dataset.

Rows have 12 categorical fields `cat0..cat11` (10 values each; cat0-cat2 uniform, the others mildly
skewed), a multi-valued field `tags` (1-3 of 15 tags joined by `|`) and 2 numeric fields `num0`
(log-normal, informative) and `num1` (noise), with ~2% of `num0` and `cat11` missing. The click probability is

    logit = bias + sum_f w_f[cat_f] + mean_t u[tag_t] + 0.3 * log(1 + num0)
            + strength * s_0[cat0] * s_1[cat1] * s_2[cat2]
            + strength / 4 * (s_0[cat0] + s_1[cat1] + s_2[cat2])

with first-order weights `w, u ~ N(0, 0.4^2)` (zero for cat0-cat2) and signs `s_k[v] = +-1`, half of
each field's values +1. As cat0-cat2 are uniform, the product term is a pure 3-way interaction: it has
no first- or second-order marginal effect, so LR and FM cannot use it, while a model that learns
3-way interactions (DCN-v2's cross layers, an MLP, attention over fields) can. The small first-order
term on the same signs gives gradient descent a foothold: without it the product is a 3-bit parity,
which DCN-v2 did not pick up in 6 epochs on 40,000 rows in our trial (validation AUC stayed at
LR's). Every weight comes from `seed`, so a seed fixes the whole data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUM_CATEGORICAL = 12
VOCAB = 10
NUM_TAGS = 15


def make_click_log(rows: int = 60_000, seed: int = 0, strength: float = 2.0, bias: float = -0.8) -> pd.DataFrame:
    """`rows` click-log rows (strings, like a file read by `recsys.data.readers`) with a `label` column."""
    if rows < 1:
        raise ValueError(f"make_click_log: rows must be >= 1; got {rows}")
    rng = np.random.default_rng(seed)
    probs = 1.0 / np.arange(1, VOCAB + 1) ** 0.5
    probs /= probs.sum()
    weights = rng.normal(0.0, 0.4, size=(NUM_CATEGORICAL, VOCAB))
    weights[:3] = 0.0  # the interacting fields act only through the 3-way term
    # half the values of each interacting field get sign +1: with uniform frequencies E[s_k] = 0, so the
    # 3-way term has no first- or second-order marginal effect
    signs = np.stack([rng.permutation(np.repeat([-1.0, 1.0], VOCAB // 2)) for _ in range(3)])
    tag_weights = rng.normal(0.0, 0.4, size=NUM_TAGS)
    uniform = np.full(VOCAB, 1.0 / VOCAB)
    cats = np.stack([rng.choice(VOCAB, size=rows, p=uniform if f < 3 else probs) for f in range(NUM_CATEGORICAL)], axis=1)
    logit = bias + weights[np.arange(NUM_CATEGORICAL), cats].sum(1)
    s0, s1, s2 = signs[0, cats[:, 0]], signs[1, cats[:, 1]], signs[2, cats[:, 2]]
    logit += strength * s0 * s1 * s2 + 0.25 * strength * (s0 + s1 + s2)
    n_tags = rng.integers(1, 4, size=rows)
    order = np.argsort(rng.random((rows, NUM_TAGS)), axis=1)[:, :3]  # 3 distinct tags per row
    used = np.arange(3)[None, :] < n_tags[:, None]
    logit += (tag_weights[order] * used).sum(1) / n_tags
    names = np.array([f"t{t}" for t in range(NUM_TAGS)])
    tags = names[order[:, 0]]
    for j in (1, 2):
        tags = np.where(used[:, j], np.char.add(np.char.add(tags, "|"), names[order[:, j]]), tags)
    num0 = rng.lognormal(1.0, 1.0, size=rows)
    logit += 0.3 * np.log1p(num0)
    num1 = rng.normal(0.0, 1.0, size=rows)
    label = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame({"label": label.astype(int).astype(str)})
    for f in range(NUM_CATEGORICAL):
        frame[f"cat{f}"] = np.char.add("v", cats[:, f].astype(str))
    frame["tags"] = tags
    frame["num0"] = np.round(num0, 3).astype(str)
    frame["num1"] = np.round(num1, 3).astype(str)
    missing = rng.random((rows, 2)) < 0.02
    frame.loc[missing[:, 0], "num0"] = np.nan
    frame.loc[missing[:, 1], f"cat{NUM_CATEGORICAL - 1}"] = np.nan
    return frame


def synthetic_schema_columns() -> dict[str, object]:
    """Default schema of the generator's columns."""
    return {
        "label": "label",
        "categorical": [f"cat{f}" for f in range(NUM_CATEGORICAL)],
        "numeric": ["num0", "num1"],
        "multi_valued": {"tags": "|"},
    }
