"""The renderer: deterministic for a seed, stems sum to the mixture, tags follow the plan and the notes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from music21 import analysis, corpus

from audio.data.render import (
    _window,
    composition_paths,
    load_scores,
    plan_clips,
    render_clip,
)
from audio.data.tags import (
    INSTRUMENT_GROUPS,
    MODE_MARGIN,
    RENDERED_TAGS,
    TEMPO_CLASSES,
    clip_mode,
    estimate_key,
    key_correlations,
    program_group,
    tempo_class,
)


def test_same_seed_same_plan_and_samples_other_seed_redraws(audio_cache):
    scores = load_scores(composition_paths(limit=3), audio_cache, workers=1)
    first, again = plan_clips(scores, 6, 4.0, seed=0), plan_clips(scores, 6, 4.0, seed=0)
    assert first == again
    assert plan_clips(scores, 6, 4.0, seed=1) != first
    a, stems_a = render_clip(first[2], scores[first[2].composition], 4.0, 16000)
    b, stems_b = render_clip(again[2], scores[again[2].composition], 4.0, 16000)
    assert a.shape == (64000,) and np.abs(a).max() > 1e-3
    np.testing.assert_array_equal(a, b)
    for x, y in zip(stems_a, stems_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_unscaled_stems_sum_to_mixture(audio_cache):
    scores = load_scores(composition_paths(limit=3), audio_cache, workers=1)
    for clip in plan_clips(scores, 4, 4.0, seed=3):
        mixture, stems = render_clip(clip, scores[clip.composition], 4.0, 16000)
        assert len(stems) == len(clip.parts)
        np.testing.assert_allclose(mixture, np.sum(stems, axis=0), atol=1e-6)


def test_written_stems_sum_to_written_mixture(tiny_rendered):
    for clip in tiny_rendered.clips[:5]:
        mixture, rate = sf.read(tiny_rendered.audio_path(clip))
        stems = [sf.read(p)[0] for p in tiny_rendered.stem_paths(clip)]
        assert rate == 16000 and mixture.shape == (64000,)
        # 16-bit quantization: at most half a step per stored signal
        assert np.abs(mixture - np.sum(stems, axis=0)).max() <= (len(stems) + 1) * 0.5 / 32768 + 1e-9
        assert np.abs(mixture).max() == pytest.approx(0.8, abs=1e-3)


def test_clip_tags_are_the_groups_tempo_and_mode(tiny_rendered, audio_cache):
    scores = load_scores(sorted({c.composition for c in tiny_rendered.clips}), audio_cache, workers=1)
    for clip in tiny_rendered.clips:
        window = tiny_rendered.clip_seconds * clip.qpm / 60.0
        played = np.concatenate([_window(scores[clip.composition].parts[p.part], clip.start, window) for p in clip.parts])
        assert clip.mode == clip_mode(played[:, 2], played[:, 1])
        groups = {program_group(p.program) for p in clip.parts}
        assert groups == {p.group for p in clip.parts}
        mode = [clip.mode] if clip.mode else []
        assert clip.tags == [g for g in INSTRUMENT_GROUPS if g in groups] + [clip.tempo] + mode
        assert tempo_class(clip.qpm) == clip.tempo
        assert set(clip.tags) <= set(RENDERED_TAGS) and 1 <= len(clip.parts) <= 4


def test_tempo_classes_do_not_overlap():
    bounds = sorted(TEMPO_CLASSES.values())
    assert all(a[1] < b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    with pytest.raises(ValueError, match="no class"):
        tempo_class(80.0)


def test_clip_mode_of_scales_and_of_undecided_notes():
    c_major = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    # the tonic triad held long: clearly major; the same pitch classes leaning on A, C, E: clearly minor
    weights = np.array([4.0, 1, 3, 1, 3, 1, 1, 4])
    assert clip_mode(c_major, weights) == "major"
    a_minor = np.array([57, 59, 60, 62, 64, 65, 67, 69])
    assert clip_mode(a_minor, np.array([4.0, 1, 3, 1, 3, 1, 1, 4])) == "minor"
    # one pitch class correlates with no key: no mode; an even chromatic scale: no mode either
    assert clip_mode(np.array([60, 72]), np.array([1.0, 1.0])) == ""
    assert np.all(key_correlations(np.array([60]), np.array([1.0])) == 0)
    chromatic = np.arange(60, 72)
    assert clip_mode(chromatic, np.ones(12)) == ""
    # the margin is the gap between the best major and the best minor correlation
    best = key_correlations(c_major, weights).max(axis=1)
    assert clip_mode(c_major, weights, margin=abs(best[0] - best[1]) + 1e-9) == ""
    assert MODE_MARGIN > 0


@pytest.mark.parametrize("work", ["bach/bwv66.6", "bach/bwv269", "bach/bwv347"])
def test_key_estimate_equals_music21_krumhansl_kessler(work):
    score = corpus.parse(work)
    pitches, durations = [], []
    for note in score.flatten().notes:
        for pitch in note.pitches:
            pitches.append(pitch.midi)
            durations.append(float(note.quarterLength))
    tonic, mode = estimate_key(np.array(pitches), np.array(durations))
    reference = analysis.discrete.KrumhanslKessler().getSolution(score)
    assert (tonic, mode) == (reference.tonic.pitchClass, reference.mode)
