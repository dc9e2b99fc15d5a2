"""HT Demucs, its blocks and references: STFT round trip, cross-attention, overlap-add, overfitting, kernels, official weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import audio.models.htdemucs_official  # noqa: F401  (registers the converter)
from audio.models.hdemucs import HDemucs, IdealRatioMask, MixtureCopy
from audio.models.htdemucs import HTDemucs, HybridSpectrogram
from audio.models.htdemucs_blocks import CrossDomainTransformer, sin_embedding_1d, sin_embedding_2d
from audio.separate import apply_model, fade_weights, segment_starts
from audio.separation_metrics import sdr
from core.official import load_official_state_dict

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "htdemucs_small.pt"
TINY = {"hidden_channels": 8, "depth": 2, "nfft": 256, "t_layers": 2, "t_heads": 2, "sample_rate": 8000, "segment": 0.25}


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("length", [4096, 4000, 100])
def test_spectrogram_round_trip(length):
    spec = HybridSpectrogram(nfft=256)
    t = torch.arange(length) / 8000
    # tones well below Nyquist: the branch drops the Nyquist bin, and two frames at either end
    x = sum(torch.sin(2 * torch.pi * f * t + p) for f, p in [(220, 0.1), (700, 1.0), (1500, 2.0), (2500, 0.3)])
    x = torch.stack([x, 0.5 * x.roll(7)])[None]
    z = spec(x)
    assert z.shape == (1, 2, 128, -(-length // 64))  # nfft // 2 bins, ceil(length / hop) frames
    back = spec.inverse(z, length)
    assert back.shape == x.shape
    if length > 512:  # away from the ends (nfft samples) the inverse is exact
        assert (back - x)[..., 256:-256].abs().max() < 1e-4  # measured 6.6e-6


def test_sin_embeddings_match_their_formulas():
    emb = sin_embedding_1d(5, 8, max_period=100.0)
    # position 3, channel 1 of the cos half: cos(3 / 100 ** (1 / 3)); same index in the sin half
    assert float(emb[3, 1]) == pytest.approx(torch.cos(torch.tensor(3 / 100 ** (1 / 3))).item(), abs=1e-6)
    assert float(emb[3, 5]) == pytest.approx(torch.sin(torch.tensor(3 / 100 ** (1 / 3))).item(), abs=1e-6)
    pe = sin_embedding_2d(8, height=3, width=4, max_period=100.0)
    # channel 2 = sin(width position * 100 ** (-2 / 4)); channel 6 = sin(height position * the same)
    assert float(pe[2, 1, 3]) == pytest.approx(torch.sin(torch.tensor(3 * 100 ** -0.5)).item(), abs=1e-6)
    assert float(pe[6, 2, 0]) == pytest.approx(torch.sin(torch.tensor(2 * 100 ** -0.5)).item(), abs=1e-6)


def test_cross_attention_reads_the_other_branch():
    torch.manual_seed(0)
    x, xt = _noise(1, 16, 4, 6), _noise(1, 16, 20, seed=1)
    other_xt = xt + _noise(1, 16, 20, seed=2)
    cross = CrossDomainTransformer(16, num_layers=2, num_heads=2, layer_scale=False, kernel="math").eval()
    spec_a, wave_a = cross(x, xt)
    spec_b, _ = cross(x, other_xt)
    assert (spec_a - spec_b).abs().max() > 1e-2  # the spectrogram branch changed through cross-attention only
    _, wave_c = cross(x + _noise(1, 16, 4, 6, seed=3), xt)
    assert (wave_a - wave_c).abs().max() > 1e-2
    alone = CrossDomainTransformer(16, num_layers=1, num_heads=2, layer_scale=False, kernel="math").eval()
    assert torch.equal(alone(x, xt)[0], alone(x, other_xt)[0])  # a self-attention layer alone does not


def test_paper_configuration_size():
    assert sum(p.numel() for p in HTDemucs().parameters()) == 26_899_536  # the official htdemucs' count


def test_kernels_agree():
    torch.manual_seed(0)
    model = HTDemucs(**TINY, kernel="math").eval()
    mix = _noise(1, 2, 2048)
    with torch.no_grad():
        reference = model(mix)
        for layer in [*model.crosstransformer.layers, *model.crosstransformer.layers_t]:
            layer.attn.kernel = "sdpa"
        assert torch.allclose(model(mix), reference, atol=1e-5)


def _overfit(model: torch.nn.Module, steps: int = 40) -> list[float]:
    t = torch.arange(2048) / 8000
    # four tones far apart: one example a small model can learn to split in a few dozen steps
    tones = [torch.sin(2 * torch.pi * f * t) * a for f, a in [(110, 1.0), (440, 0.6), (1200, 0.4), (2600, 0.3)]]
    sources = torch.stack(tones)[None, :, None].repeat(1, 1, 2, 1)
    mix = sources.sum(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.l1_loss(model(mix), sources)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("build", [lambda: HTDemucs(**TINY), lambda: HDemucs(hidden_channels=8, depth=3, nfft=256)],
                         ids=["HTDemucs", "HDemucs"])
def test_models_overfit_a_tiny_batch(build):
    torch.manual_seed(0)
    losses = _overfit(build())
    assert losses[-1] < 0.6 * losses[0]  # measured 0.31 (HTDemucs) and 0.43 (HDemucs) of the first loss


class _Identity(torch.nn.Module):
    """Returns its input as every one of four sources (the overlap-add must give it back exactly)."""

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return mix[:, None].expand(-1, 4, -1, -1) * 1.0


@pytest.mark.parametrize("length", [1000, 4096, 4321, 300])
def test_overlap_add_of_an_identity_model_reproduces_the_input(length):
    mix = _noise(2, length)
    out = apply_model(_Identity(), mix, segment=1024, overlap=0.25)
    assert out.shape == (4, 2, length)
    assert torch.allclose(out, mix.expand(4, -1, -1), atol=1e-6)


def test_segments_cover_the_track_with_positive_weights():
    assert (fade_weights(1024) > 0).all()
    starts = segment_starts(5000, 1024, 0.25)
    assert starts[0] == 0 and starts[-1] == 5000 - 1024 and all(b - a == 768 for a, b in zip(starts[:-2], starts[1:-1], strict=True))


def test_floor_and_oracle():
    sources = _noise(1, 4, 2, 4096, seed=7)
    mix = sources.sum(1)
    floor = MixtureCopy()(mix)
    assert torch.equal(floor, mix[:, None].expand(-1, 4, -1, -1))
    oracle = IdealRatioMask(nfft=512)(mix, sources)
    assert torch.allclose(oracle.sum(1), mix, atol=1e-4)  # the masks sum to one in every bin
    assert sdr(oracle[0], sources[0]).mean() > sdr(floor[0], sources[0]).mean() + 3


def test_official_weights_reproduce_the_official_output():
    fixture = torch.load(FIXTURE, weights_only=True)
    config = fixture["config"]
    model = HTDemucs(hidden_channels=config["channels"], depth=config["depth"], nfft=config["nfft"], t_layers=config["t_layers"],
                     t_heads=config["t_heads"], sample_rate=config["samplerate"], segment=config["segment"], kernel="math")
    load_official_state_dict(model, {"state": fixture["state"]})
    with torch.no_grad():
        out = model.eval()(fixture["input"])
    assert out.shape == fixture["output"].shape
    assert (out - fixture["output"]).abs().max() < 1e-5  # measured 2.6e-8; outputs are ~0.08


def test_official_weights_of_another_configuration_are_refused():
    fixture = torch.load(FIXTURE, weights_only=True)
    model = HTDemucs(hidden_channels=8, depth=2, nfft=256, t_layers=2, t_heads=2)
    with pytest.raises(ValueError, match="crosstransformer.layers.2"):
        load_official_state_dict(model, {"state": fixture["state"]})
