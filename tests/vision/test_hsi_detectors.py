"""CEM, ACE, SMF and RX against their closed forms (numpy) on a tiny synthetic cube; the dense CNN's boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision.models.hsi_cnn import DensePixelCNN
from vision.models.target_detectors import ACE, CEM, RX, SMF


@pytest.fixture()
def tiny():
    rng = np.random.default_rng(0)
    cube = rng.random((4, 5, 6)) + 0.5  # (bands, H, W), 30 pixels of 4 bands
    signatures = rng.random((2, 4)) + 0.5
    return cube, signatures


def _pixels(cube):
    return cube.reshape(cube.shape[0], -1).T  # (N, bands)


def test_cem_closed_form(tiny):
    cube, d = tiny
    x = _pixels(cube)
    r = x.T @ x / len(x)
    model = CEM(num_classes=2, in_channels=4, ridge=0.0)
    model.set_signatures(torch.from_numpy(d).float())
    scores = model(torch.from_numpy(cube)[None].double()).numpy()[0]
    for k in range(2):
        w = np.linalg.solve(r, d[k]) / (d[k] @ np.linalg.solve(r, d[k]))
        np.testing.assert_allclose(scores[k].reshape(-1), x @ w, rtol=1e-4, atol=1e-5)
    # the filter passes the signature itself with gain 1: a pixel equal to d scores exactly 1
    cube[:, 0, 0] = d[1]
    assert model(torch.from_numpy(cube)[None].double())[0, 1, 0, 0].item() == pytest.approx(1.0, abs=1e-6)


def test_ace_and_smf_closed_forms(tiny):
    cube, d = tiny
    x = _pixels(cube)
    mu = x.mean(0)
    s_inv = np.linalg.inv(np.cov(x.T))
    ace, smf = ACE(2, 4, ridge=0.0), SMF(2, 4, ridge=0.0)
    for m in (ace, smf):
        m.set_signatures(torch.from_numpy(d).float())
    t = torch.from_numpy(cube)[None]
    got_ace, got_smf = ace(t).numpy()[0], smf(t).numpy()[0]
    xc = x - mu
    for k in range(2):
        dc = d[k].astype(np.float32).astype(np.float64) - mu
        num = xc @ s_inv @ dc
        want_ace = num**2 / ((dc @ s_inv @ dc) * np.einsum("ni,ij,nj->n", xc, s_inv, xc))
        np.testing.assert_allclose(got_ace[k].reshape(-1), want_ace, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got_smf[k].reshape(-1), num / (dc @ s_inv @ dc), rtol=1e-4, atol=1e-5)
    assert got_ace.min() >= 0 and got_ace.max() <= 1 + 1e-6


def test_rx_is_the_mahalanobis_distance(tiny):
    cube, _ = tiny
    x = _pixels(cube)
    xc = x - x.mean(0)
    want = np.einsum("ni,ij,nj->n", xc, np.linalg.inv(np.cov(x.T)), xc)
    got = RX(2, 4, ridge=0.0)(torch.from_numpy(cube)[None]).numpy()[0, 0]
    np.testing.assert_allclose(got.reshape(-1), want, rtol=1e-4)


def test_detector_boxes_follow_the_threshold():
    # an implanted 2 x 2 target in a flat noisy background: the top 2% of ACE scores is that block
    rng = np.random.default_rng(1)
    cube = 0.5 + 0.01 * rng.standard_normal((4, 16, 16))
    target = np.array([0.9, 0.1, 0.8, 0.2])
    cube[:, 5:7, 9:11] = target[:, None, None]
    model = ACE(1, 4, threshold_quantile=0.98)
    model.set_signatures(torch.tensor(target[None]).float())
    t = torch.from_numpy(cube).float()[None]
    (det,) = model.detect(model(t), t)
    assert det.boxes.tolist()[0] == [9.0, 5.0, 11.0, 7.0] and det.labels.tolist()[0] == 0
    assert det.scores[0] == pytest.approx(float(model(t).max()), rel=1e-6)


def test_signatures_must_match_the_library():
    with pytest.raises(ValueError, match=r"signatures must be \(4, 30\)"):
        CEM(4, 30).set_signatures(torch.zeros(3, 30))


def test_cnn_boxes_are_components_of_confident_pixels():
    model = DensePixelCNN(in_channels=3, num_classes=2, threshold=0.5)
    logits = torch.full((1, 2, 8, 8), -4.0)
    logits[0, 1, 2:4, 2:3] = 3.0
    logits[0, 0, 6, 6] = 1.0
    (det,) = model.detect(logits)
    assert sorted(zip(det.labels.tolist(), det.boxes.tolist(), strict=True)) == [(0, [6.0, 6.0, 7.0, 7.0]), (1, [2.0, 2.0, 3.0, 4.0])]
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 2, 8, 8)
