"""The MUSDB18-HQ reader on a fixture in the exact layout, bad tracks, augmentation, and the rendered four-source set."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audio.data.musdb import SOURCES, read_musdb, validation_tracks
from audio.data.separation import SegmentDataset, render_multitrack

RATE = 8000


def _write_track(folder, seconds=1.0, rate=RATE, channels=2, seed=0, skip=(), lengths=None, rates=None):
    """A track whose stems are seeded noise and whose mixture is their sum, in MUSDB18-HQ's file names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    stems = {}
    for k, name in enumerate(SOURCES):
        frames = (lengths or {}).get(name, int(seconds * rate))
        stems[name] = (0.1 * (k + 1) * rng.standard_normal((frames, channels))).astype(np.float32)
        if name not in skip:
            sf.write(folder / f"{name}.wav", stems[name], (rates or {}).get(name, rate), subtype="FLOAT")
    if lengths is None:
        sf.write(folder / "mixture.wav", sum(stems.values()), rate, subtype="FLOAT")
    else:
        sf.write(folder / "mixture.wav", stems["drums"], rate, subtype="FLOAT")
    return stems


def test_validation_names_are_musdbs():
    names = validation_tracks()
    assert len(names) == 14 and "Actions - One Minute Smile" in names


def test_reader_splits_skips_and_reads(tmp_path):
    _write_track(tmp_path / "train" / "Some Artist - Song")
    stems = _write_track(tmp_path / "train" / "Actions - One Minute Smile", seed=1)  # a MUSDB validation track
    _write_track(tmp_path / "test" / "Other - Tune", seed=2, channels=1)
    _write_track(tmp_path / "test" / "Broken - No Bass", seed=3, skip=("bass",))
    with pytest.warns(UserWarning, match="Broken - No Bass: skipped, missing bass"):
        layout = read_musdb(tmp_path)
    assert [t.name for t in layout.splits["train"]] == ["Some Artist - Song"]
    assert [t.name for t in layout.splits["valid"]] == ["Actions - One Minute Smile"]
    assert [t.name for t in layout.splits["test"]] == ["Other - Tune"]
    assert layout.skipped == ["Broken - No Bass"]
    mixture, sources = layout.splits["valid"][0].read(RATE)
    assert mixture.shape == (2, RATE) and sources.shape == (4, 2, RATE)
    for k, name in enumerate(SOURCES):  # in SOURCES order, exactly the written samples
        assert torch.allclose(sources[k], torch.from_numpy(stems[name].T))
    mono_mix, mono_sources = layout.splits["test"][0].read(RATE)
    assert torch.equal(mono_mix[0], mono_mix[1]) and mono_sources.shape == (4, 2, RATE)  # mono duplicated
    resampled, _ = layout.splits["valid"][0].read(RATE // 2)
    assert resampled.shape == (2, RATE // 2)


def test_mismatched_tracks_name_the_track(tmp_path):
    _write_track(tmp_path / "test" / "Long Bass", lengths={"bass": 900})
    _write_track(tmp_path / "test" / "Fast Drums", rates={"drums": 16000})
    layout = read_musdb(tmp_path)
    tracks = {t.name: t for t in layout.splits["test"]}
    with pytest.raises(ValueError, match=r"Long Bass: stems have different lengths: .*bass 900 frames"):
        tracks["Long Bass"].info()
    with pytest.raises(ValueError, match=r"Fast Drums: stems have different sample rates: .*drums 16000 Hz"):
        tracks["Fast Drums"].read(RATE)


def test_a_folder_without_tracks_is_an_error(tmp_path):
    (tmp_path / "test" / "empty").mkdir(parents=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no complete track"):
        read_musdb(tmp_path)


def test_remix_augmentation_keeps_the_mixture_the_sum_of_the_sources(tmp_path):
    for k in range(3):
        _write_track(tmp_path / "train" / f"Track {k}", seed=k)
    tracks = read_musdb(tmp_path).splits["train"]
    torch.manual_seed(0)
    data = SegmentDataset(tracks, RATE, segment_samples=2000, samples_per_epoch=8, remix=True, gain_range=(0.25, 1.25))
    for i in range(len(data)):
        item = data[i]
        assert item["sources"].shape == (4, 2, 2000)
        assert torch.allclose(item["mixture"], item["sources"].sum(0), atol=1e-6)
    # with remixing off and no augmentation, a segment is an excerpt of one track: its file mixture
    plain = SegmentDataset(tracks, RATE, segment_samples=RATE, samples_per_epoch=1, remix=False, gain_range=(1, 1),
                           flip=False, swap=False)
    item = plain[0]
    mixtures = [t.read(RATE)[0] for t in tracks]
    assert any(torch.allclose(item["mixture"], m, atol=1e-5) for m in mixtures)


def test_rendered_set_has_four_stereo_sources_that_sum_to_the_mixture(audio_cache):
    counts = {"train": 2, "valid": 1, "test": 1}
    root = render_multitrack(counts, seed=0, seconds=2.0, sample_rate=RATE, max_compositions=10, cache_dir=audio_cache,
                             workers=1, progress=False)
    layout = read_musdb(root)
    assert {k: len(v) for k, v in layout.splits.items()} == counts
    for track in [t for split in layout.splits.values() for t in split]:
        mixture, sources = track.read(RATE)
        assert sources.shape == (4, 2, 2 * RATE)
        assert (sources.square().mean(dim=(1, 2)) > 1e-5).all()  # every source sounds
        assert not torch.equal(sources[:, 0], sources[:, 1])  # panned: left and right differ
        # the mixture is the sum of the 16-bit stems (one quantization step per stem at most)
        assert (mixture - sources.sum(0)).abs().max() <= 4 / 32768
    again = render_multitrack(counts, seed=0, seconds=2.0, sample_rate=RATE, max_compositions=10, cache_dir=audio_cache,
                              workers=1, progress=False)
    assert again == root  # cached
    other = render_multitrack(counts, seed=1, seconds=2.0, sample_rate=RATE, max_compositions=10, cache_dir=audio_cache,
                              workers=1, progress=False)
    assert other != root
