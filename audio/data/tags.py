"""The tag vocabulary of the rendered dataset: instrument groups of General MIDI, tempo class, mode.

Instruments: the renderer draws each part's General MIDI program from one group below, and a clip
carries the tag of each group that sounds in it. Each group holds the programs of its GM 1 family
that a listener would call by the group's name (programs are 0-based): acoustic pianos; mallets
(glockenspiel, vibraphone, marimba, xylophone) for `percussion`; drawbar, church and reed organs;
nylon, steel and jazz guitars; violin, viola, cello and the string ensembles; choir and voice
"aahs" / "oohs"; trumpet, trombone, French horn and the brass section; oboe, bassoon, clarinet and
flute for `woodwind`. Variants whose sound departs from the name (honky-tonk and electric pianos,
harpsichord, clavinet, synth strings and brass, distorted guitars, accordions, ...) are left out.

Tempo: the renderer draws a tempo from one of three disjoint ranges of quarter notes per minute,
about a quarter apart; the clip is tagged with its range's name. Mode: `major` or `minor`, the
mode of the key of the notes that sound in the clip (its playing parts, inside its window) from the
Krumhansl-Kessler key profiles (Krumhansl 1990, "Cognitive Foundations of Musical Pitch") correlated
with the duration-weighted pitch-class histogram, the method of music21's
`analysis.discrete.KrumhanslKessler`. A clip whose best major and best minor keys correlate within
`MODE_MARGIN` of each other (often the relative keys, which share their pitch classes) has no mode
tag: its mode is not decided by what it plays (`clip_mode`).
"""

from __future__ import annotations

import numpy as np

# group -> GM programs (0-based)
INSTRUMENT_GROUPS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1),
    "percussion": (9, 11, 12, 13),
    "organ": (16, 19, 20),
    "guitar": (24, 25, 26),
    "strings": (40, 41, 42, 48, 49),
    "choir": (52, 53),
    "brass": (56, 57, 60, 61),
    "woodwind": (68, 70, 71, 73),
}
# name -> [low, high) quarter notes per minute; gaps of about a quarter keep the classes apart
TEMPO_CLASSES: dict[str, tuple[float, float]] = {
    "slow": (50.0, 66.0),
    "moderate": (84.0, 104.0),
    "fast": (132.0, 164.0),
}
MODES: tuple[str, ...] = ("major", "minor")
# a mode is tagged only when its best key's correlation beats the other mode's best by this much
MODE_MARGIN = 0.1
RENDERED_TAGS: tuple[str, ...] = (*INSTRUMENT_GROUPS, *TEMPO_CLASSES, *MODES)

# Krumhansl-Kessler probe-tone profiles, tonic first (C major / C minor)
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def program_group(program: int) -> str:
    """The instrument group of a 0-based GM program (ValueError for a program outside every group)."""
    for group, programs in INSTRUMENT_GROUPS.items():
        if program in programs:
            return group
    raise ValueError(f"GM program {program} is in no instrument group of audio.data.tags")


def tempo_class(qpm: float) -> str:
    """The tempo class of `qpm` quarter notes per minute (ValueError between the ranges)."""
    for name, (low, high) in TEMPO_CLASSES.items():
        if low <= qpm < high:
            return name
    raise ValueError(f"tempo {qpm} qpm is in no class of {TEMPO_CLASSES}")


def key_correlations(pitches: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """`(2, 12)` Pearson correlations of the notes' duration-weighted pitch-class histogram with the
    Krumhansl-Kessler profiles: row 0 the major keys, row 1 the minor keys, column the tonic.

    pitches: `(notes,)` MIDI numbers; durations: `(notes,)` weights (seconds or quarters). A
    histogram with fewer than two pitch classes, or with all twelve equal, correlates 0 with every key.
    """
    histogram = np.bincount(np.asarray(pitches, dtype=np.int64) % 12, weights=np.asarray(durations, float), minlength=12)
    out = np.zeros((2, 12))
    if np.count_nonzero(histogram) < 2 or np.ptp(histogram) == 0:
        return out
    for row, profile in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        for tonic in range(12):
            out[row, tonic] = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
    return out


def estimate_key(pitches: np.ndarray, durations: np.ndarray) -> tuple[int, str]:
    """`(tonic pitch class, mode)` of notes by the Krumhansl-Kessler key-finding algorithm: the one of
    24 keys (12 tonics x major/minor) with the highest correlation (`key_correlations`)."""
    r = key_correlations(pitches, durations)
    row, tonic = np.unravel_index(int(np.argmax(r)), r.shape)
    return int(tonic), MODES[int(row)]


def clip_mode(pitches: np.ndarray, durations: np.ndarray, margin: float = MODE_MARGIN) -> str:
    """`major`, `minor`, or `""` when the best key of either mode correlates within `margin` of the
    other's (the notes do not decide the mode; module docstring)."""
    best = key_correlations(pitches, durations).max(axis=1)
    if abs(best[0] - best[1]) <= margin:
        return ""
    return MODES[int(np.argmax(best))]
