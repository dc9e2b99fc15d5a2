"""Mel shapes, the tagger's attention maps, kernel switching, and each model overfitting a tiny batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audio.data.io import load_audio
from audio.models.fcn import FCN
from audio.models.logistic_regression import LogisticRegressionTagger, clip_statistics
from audio.models.mel import LogMel
from audio.models.pons_front_end import PonsFrontEnd
from audio.models.self_attention_tagger import SelfAttentionTagger
from audio.models.short_chunk_cnn import ShortChunkCNN
from core.blocks import sinusoidal_table

from .helpers import write_wav


@pytest.mark.parametrize(("seconds", "rate", "frames"), [(1.0, 16000, 63), (3.0, 44100, 188), (15.0, 22050, 938), (0.5, 8000, 32)])
def test_mel_shape_for_duration_and_rate(tmp_path, seconds, rate, frames):
    # decoded at any rate, resampled to 16 kHz: 1 + samples // 256 frames of 128 bands (15 s -> 938, the paper's input)
    audio = load_audio(write_wav(tmp_path / "a.wav", seconds, rate), 16000)
    assert audio.shape == (int(round(seconds * 16000)),)
    mel = LogMel()(audio)
    assert mel.shape == (128, frames) == (128, LogMel().frames(audio.numel()))
    assert LogMel(n_mels=96, hop_length=160)(audio).shape == (96, 1 + audio.numel() // 160)


def test_resampled_tone_keeps_its_band(tmp_path):
    audio = load_audio(write_wav(tmp_path / "a.wav", 1.0, 44100, freq=1000.0), 16000)
    spectrum = np.abs(np.fft.rfft(audio.numpy()))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)  # 1 Hz bins over 1 s


def test_paper_tagger_size_and_attention_map_shape():
    torch.manual_seed(0)
    model = SelfAttentionTagger().eval()
    assert 10.3e6 < sum(p.numel() for p in model.parameters()) < 10.7e6  # CNNSA: about 10.5M
    mel = torch.randn(2, 128, 938)  # 15 s at 16 kHz, hop 256
    maps = model.attention_maps(mel)
    assert len(maps) == 2
    for weights in maps:
        assert weights.shape == (2, 8, 1 + 118, 1 + 118)  # [CLS] + ceil(938 / 8) time tokens
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 8, 119), atol=1e-5, rtol=0)
        assert (weights >= 0).all()
    assert model(mel).shape == (2, 50)


def test_tagger_kernels_agree_with_math():
    torch.manual_seed(0)
    reference = SelfAttentionTagger(num_tags=5, n_channels=8, num_heads=2).eval()
    mel = torch.randn(3, 64, 96)
    for kernel in ("sdpa", "chunked"):
        other = SelfAttentionTagger(num_tags=5, n_channels=8, num_heads=2, kernel=kernel).eval()
        other.load_state_dict(reference.state_dict())
        torch.testing.assert_close(other(mel), reference(mel), atol=1e-4, rtol=1e-4)


def test_pons_front_end_against_a_direct_reference():
    # timbre filter = the max over frequency positions of a (height x width) correlation; temporal filter = a 1-D
    # correlation of the band-averaged envelope; BatchNorm in eval with its initial statistics is the identity
    torch.manual_seed(0)
    front = PonsFrontEnd(n_mels=20, n_channels=2, width=8).eval()
    x = torch.randn(3, 1, 20, 41)
    timbre = front.timbre[3]  # 0.4 of 20 bands = 8 bands x 7 frames, 2 filters
    assert timbre.conv.weight.shape == (2, 1, 8, 7)
    padded = F.pad(x, (3, 3))
    direct = torch.stack([
        torch.stack([(padded[:, 0, f:f + 8, t:t + 7] * timbre.conv.weight[k, 0]).sum((1, 2)) for t in range(41)], -1)
        for k in range(2) for f in range(20 - 8 + 1)
    ], 1).view(3, 2, 13, 41) + timbre.conv.bias[None, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(timbre(x), torch.relu(direct).amax(2) / (1 + 1e-5) ** 0.5, atol=1e-5, rtol=1e-5)
        temporal = front.temporal[0]  # 165 frames, 2 filters
        envelope = F.pad(x.mean(2), (82, 82))
        direct = torch.stack([(envelope[:, 0, t:t + 165][:, None] * temporal.conv.weight[:, 0]).sum(-1) for t in range(41)], -1)
        torch.testing.assert_close(temporal(x), torch.relu(direct + temporal.conv.bias[:, None]) / (1 + 1e-5) ** 0.5,
                                   atol=1e-5, rtol=1e-5)
        assert front.fuse[0].in_channels == 29 * 2  # (1 + 2 + 4) x 2 timbre + (1 + 2 + 4 + 8) temporal multiples
        assert front(x).shape == (3, 41, 8)  # one token per frame


def test_pons_tagger_tokens_positions_and_attention_maps():
    torch.manual_seed(0)
    model = SelfAttentionTagger(num_tags=4, n_channels=2, width=16, num_heads=2, front_end="pons", n_mels=32).eval()
    assert model.time_stride == 1
    mel = torch.randn(2, 32, 50)
    tokens = model.tokens(mel)
    assert tokens.shape == (2, 51, 16)
    frames = model.front(model.spec_bn(mel[:, None]))
    torch.testing.assert_close(tokens[:, 1:] - frames, sinusoidal_table(51, 16)[1:].expand(2, -1, -1))
    torch.testing.assert_close(tokens[:, 0], model.cls[0].expand(2, -1))
    for weights in model.attention_maps(mel):
        assert weights.shape == (2, 2, 51, 51)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 51), atol=1e-5, rtol=0)
    assert model(mel).shape == (2, 4)
    assert not any(p.requires_grad for p in model.spec_bn.parameters())  # no affine input BatchNorm
    with pytest.raises(ValueError, match=r"front_end='pons'\) was built for 32 mel bands; got 40"):
        model(torch.randn(1, 40, 50))
    with pytest.raises(ValueError, match="front_end must be 'resnet' or 'pons'"):
        SelfAttentionTagger(front_end="vgg")


def _overfit(model: torch.nn.Module, mel: torch.Tensor, labels: torch.Tensor, steps: int) -> tuple[float, float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(mel), labels)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return first, float(F.binary_cross_entropy_with_logits(model(mel), labels))


@pytest.mark.parametrize("name", ["tagger", "tagger_pons", "fcn", "shortchunk"])
def test_each_model_overfits_a_tiny_batch(name):
    torch.manual_seed(0)
    mel = torch.randn(4, 128, 128) * 10 - 40
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    model = {
        "tagger": lambda: SelfAttentionTagger(num_tags=3, n_channels=8, num_heads=2, dropout=0.0, head_dropout=0.0),
        "tagger_pons": lambda: SelfAttentionTagger(num_tags=3, n_channels=2, width=16, num_heads=2, dropout=0.0,
                                                   head_dropout=0.0, front_end="pons"),
        "fcn": lambda: FCN(num_tags=3, widths=(8, 16, 16, 16, 8), pools=((2, 2), (2, 2), (2, 2), (2, 2)), dropout=0.0),
        "shortchunk": lambda: ShortChunkCNN(num_tags=3, n_channels=8, dropout=0.0),
    }[name]()
    first, last = _overfit(model, mel, labels, steps=150)
    assert first > 0.5 and last < 0.1 * first  # from chance (ln 2) to memorized


def test_logistic_regression_statistics_and_overfit():
    rng = np.random.default_rng(0)
    mels = [rng.normal(-40, 10, size=(16, 50)) + (5 * k if k % 2 else 0) for k in range(12)]
    stats = clip_statistics(mels[0], n_mfcc=4)
    assert stats.shape == (2 * 16 + 2 * 4,)
    np.testing.assert_allclose(stats[:16], mels[0].mean(axis=1))
    np.testing.assert_allclose(stats[20:36], mels[0].std(axis=1))
    labels = np.array([[k % 2, 1] for k in range(12)], dtype=np.float32)  # the second tag is always present
    model = LogisticRegressionTagger(n_mfcc=4)
    probs = model.fit(model.features(mels), labels).predict_proba(model.features(mels))
    assert ((probs[:, 0] > 0.5) == (labels[:, 0] > 0.5)).all()
    np.testing.assert_allclose(probs[:, 1], 1.0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"log-mel batch \(batch, n_mels, frames\); got \(128, 64\)"):
        SelfAttentionTagger(num_tags=2, n_channels=4, num_heads=2)(torch.zeros(128, 64))
    with pytest.raises(ValueError, match="ShortChunkCNN needs at least 128 mels and 128 frames"):
        ShortChunkCNN(num_tags=2, n_channels=4)(torch.zeros(1, 128, 64))
    with pytest.raises(ValueError, match="FCN with pools .* needs at least 24 mels and 320 frames"):
        FCN(num_tags=2)(torch.zeros(1, 128, 100))
