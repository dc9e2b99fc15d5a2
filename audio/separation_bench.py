"""`attn-bench separation`: HT Demucs against Hybrid Demucs, the mixture floor and the IRM oracle.

    attn-bench separation                               # the rendered four-source set (seed 0), CPU configs
    attn-bench separation --seed 1                      # a rendered set drawn with another seed
    attn-bench separation --data-path data/musdb18hq    # a MUSDB18-HQ-layout folder (train/ and test/)

The small HT Demucs and HDemucs train through the same code path as `attn fit` with
`audio/configs/{htdemucs,hdemucs}_rendered.yaml` (data options overridden), for the same fixed step
budget (the configs' 400 steps, or `--max-steps`) without validation, in `--jobs` parallel processes of
`--threads` threads, and are tested on their final weights; `mixture` (every source = the mixture)
and `IRM` (the ideal ratio mask oracle) are tested as built. Every run lands in MLflow experiment
`audio/separation/<dataset>`. Per model the table shows the test tracks' MDX SDR per source and mean
(`sdr`, what Demucs reports as nSDR), SI-SDR, and the museval BSS Eval v4 SDR (median over 1 s
frames, then mean over the first `--museval-tracks` test tracks: `museval_sdr`); `musdb_sdr` is the MDX SDR of each trained model on
the real MUSDB18 excerpt (`--musdb-path`, resampled to the model's rate and back). Then the trained
HT Demucs and HDemucs separate a `--long-seconds` (180) stereo 44.1 kHz track (the excerpt's mixture
repeated) with `python -m audio.separate` in a fresh process: its time (`long_seconds`) and peak
resident memory (`long_peak_gib`). The table is printed, written with `--json` and logged to MLflow
experiment `bench/separation`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TRAINED = {"htdemucs": "HTDemucs", "hdemucs": "HDemucs"}
REFERENCES = {"mixture": "mixture", "irm": "IRM"}
MODELS = (*TRAINED, *REFERENCES)
MUSDB_EXCERPT = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "musdb18_7s_sample"
FLOOR_MARGIN_DB = 3.0
PEAK_LIMIT_GIB = 4.0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench separation` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "separation", help="HT Demucs vs Hybrid Demucs, the mixture floor and the IRM oracle", doc=__doc__)
    parser.add_argument("--data-path", default=None, help="a MUSDB18-HQ-layout folder (default: the rendered set)")
    parser.add_argument("--dataset", default=None, help="dataset name (MLflow experiment audio/separation/<dataset>)")
    parser.add_argument("--seed", type=int, default=0, help="redraws the rendered set (and seeds training)")
    parser.add_argument("--num-tracks", nargs=3, type=int, default=None, metavar=("TRAIN", "VALID", "TEST"),
                        help="rendered tracks per split (default: the configs' 96 8 16)")
    parser.add_argument("--track-seconds", type=float, default=None, help="length of the rendered tracks (default 8)")
    parser.add_argument("--max-compositions", type=int, default=None, help="render from the first N corpus scores only")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="trained models run in parallel processes")
    parser.add_argument("--musdb-path", default=str(MUSDB_EXCERPT), help="MUSDB-layout folder separated by the trained models ('' to skip)")
    parser.add_argument("--long-seconds", type=float, default=180.0, help="length of the full-length separation test (0 to skip)")
    parser.add_argument("--museval-tracks", type=int, default=4,
                        help="test tracks scored with museval's BSS Eval v4 (slow: ~10-30 s per 8-s track on one core; 0 skips it)")
    parser.add_argument("--cache-dir", default=None, help="rendering cache (default ~/.cache/attn-suite/audio)")
    add_training_arguments(parser, root_dir=str(Path("checkpoints") / "bench-separation"), threads=1)
    parser.set_defaults(func=run)


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SeparationDataModule arguments of this benchmark (overriding the configs' data)."""
    options: dict[str, Any] = {"seed": args.seed, "cache_dir": args.cache_dir}
    if args.data_path is not None:
        options.update(format="musdb", path=str(args.data_path))
    else:
        if args.num_tracks is not None:
            options["num_tracks"] = dict(zip(("train", "valid", "test"), args.num_tracks, strict=True))
        options.update(track_seconds=args.track_seconds, max_compositions=args.max_compositions)
    if args.dataset:
        options["dataset"] = args.dataset
    return options


def run(args: argparse.Namespace) -> None:
    """Prepare the data once, train and test every model, print the table and the claims."""
    from audio.data.separation import SeparationDataModule

    options = data_options(args)
    data = SeparationDataModule(**{**_config_data(CONFIG_DIR / "htdemucs_rendered.yaml"),
                                   **{k: v for k, v in options.items() if v is not None}})
    start = time.perf_counter()
    data.prepare_data()
    data.setup()
    prepare_seconds = time.perf_counter() - start
    counts = data.data_counts()
    print(f"[separation] {data.dataset_name}: {counts['train_tracks']}/{counts['valid_tracks']}/{counts['test_tracks']} tracks "
          f"({counts['skipped_tracks']} skipped), data ready in {prepare_seconds:.0f} s", flush=True)
    if not args.no_mlflow:
        from core.tracking import create_store

        create_store()
    rows: list[BenchRow] = []
    checkpoints: dict[str, str] = {}
    trained = [m for m in args.models if m in TRAINED]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_model, m, options, args) for m in trained]
        references = [run_model(m, options, args)[0] for m in args.models if m in REFERENCES]
        for future in futures:
            row, checkpoint = future.result()
            rows.append(row)
            if checkpoint:
                checkpoints[row.model] = checkpoint
    rows += references
    if args.long_seconds > 0 and args.musdb_path:
        long_track_rows(rows, checkpoints, Path(args.musdb_path), args.long_seconds)
    notes = [
        f"{data.dataset_name}: {counts['train_tracks']}/{counts['valid_tracks']}/{counts['test_tracks']} train/valid/test tracks"
        + (f" (rendered, composition-disjoint, seed {args.seed}); rendering {prepare_seconds:.0f} s (0 when cached)"
           if data.format == "rendered" else ""),
        "sdr: MDX per-track SDR (Demucs' nSDR), mean over test tracks, per source and mean of sources; si_sdr likewise; "
        f"museval_sdr: BSS Eval v4 (museval), median over 1 s frames, mean over the first {args.museval_tracks} test tracks; "
        f"musdb_sdr: MDX SDR on the real MUSDB18 excerpt ({args.musdb_path or 'skipped'})",
        f"seconds = training time of one run ({args.jobs} parallel jobs x {args.threads} thread(s)); the final weights are tested; "
        f"long_seconds / long_peak_gib: `python -m audio.separate` on a {args.long_seconds:g} s stereo 44.1 kHz track, "
        "wall time and peak resident memory of that process",
        *claims(rows),
    ]
    sources = data.sources
    columns = ["model", "role", "dataset", "sdr", *(f"sdr_{s}" for s in sources), "si_sdr", "museval_sdr", "musdb_sdr",
               "params", "steps", "seconds", "long_seconds", "long_peak_gib"]
    report(rows, experiment="bench/separation", title=f"separation {data.dataset_name} (seed {args.seed})", json_path=args.json,
           columns=columns, log_mlflow=not args.no_mlflow, notes=notes, budget=args)


def _config_data(config: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(config.read_text())["data"]["init_args"])


def run_model(name: str, options: dict[str, Any], args: argparse.Namespace) -> tuple[BenchRow, str | None]:
    """Fit (when it has parameters) and test one model through the `attn` CLI, then its museval and MUSDB scores."""
    overrides = [f"--seed_everything={args.seed}", "--data.init_args.workers=1", "--data.init_args.progress=false"]
    overrides += [f"--data.init_args.{key}={value}" for key, value in options.items() if value is not None]
    if name in REFERENCES:  # nothing to optimize: the training overrides of --set do not apply to them
        kept = [item for item in args.set if not item.startswith(("model.init_args.optimizer", "model.init_args.lr_scheduler"))]
        args = argparse.Namespace(**{**vars(args), "set": kept})
    row, trained = train_row(CONFIG_DIR / f"{name}_rendered.yaml", args, overrides=overrides, dataset=options.get("dataset", ""),
                             settings={"seed": args.seed}, name=name, validate=False, tag="separation")
    row.config = name
    if name in REFERENCES:
        row.model = REFERENCES[name]  # the table's names for the parameter-free references
    if trained is None:
        return row, None
    task, trainer = trained.task, trained.trainer
    if args.museval_tracks > 0:
        row.metrics["museval_sdr"] = museval_split(task, trainer.datamodule.test_set, args.museval_tracks)
    if args.musdb_path and name in TRAINED:
        row.metrics["musdb_sdr"] = musdb_excerpt_sdr(task, Path(args.musdb_path))
    checkpoint = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback is not None else None
    return row, checkpoint or None


def museval_split(task: Any, dataset: Any, tracks: int) -> float:
    """Mean over the first `tracks` test tracks (and sources) of museval's per-track median-over-frames BSS Eval v4 SDR."""
    from audio.separation_metrics import museval_sdr

    task.model.eval()
    per_track = []
    for i in range(min(tracks, len(dataset))):
        item = dataset[i]
        estimate = task.separate(item["mixture"], item["sources"])
        per_track.append(museval_sdr(estimate.numpy(), item["sources"].numpy(), int(task.model.sample_rate)))
    with np.errstate(all="ignore"):
        return float(np.nanmean(np.stack(per_track)))


def musdb_excerpt_sdr(task: Any, root: Path) -> float:
    """Mean MDX SDR of the trained model on the tracks at `root` (MUSDB layout), separated at their own rate."""
    import torch

    from audio.data.musdb import read_musdb
    from audio.separate import Separator
    from audio.separation_metrics import sdr

    separator = Separator(task.model.eval(), int(task.model.sample_rate), float(task.model.segment), list(task.model.sources))
    scores = []
    for track in [t for split in read_musdb(root).splits.values() for t in split]:
        rate, _ = track.info()
        mixture, sources = track.read(rate)
        with torch.no_grad():
            scores.append(float(sdr(separator.separate(mixture, rate), sources).mean()))
    return float(np.mean(scores))


def long_track_rows(rows: list[BenchRow], checkpoints: dict[str, str], musdb: Path, seconds: float) -> None:
    """Separate a `seconds`-long stereo track with each trained checkpoint in a fresh process; time and peak memory."""
    import soundfile as sf

    from audio.data.musdb import read_musdb

    track = next(t for split in read_musdb(musdb).splits.values() for t in split)
    samples, rate = sf.read(str(track.mixture), dtype="float32", always_2d=True)
    repeats = int(np.ceil(seconds * rate / len(samples)))
    with tempfile.TemporaryDirectory() as folder:
        song = Path(folder) / "long_song.wav"
        sf.write(str(song), np.tile(samples, (repeats, 1))[: int(seconds * rate)], rate, subtype="PCM_16")
        for row in rows:
            checkpoint = checkpoints.get(row.model)
            if checkpoint is None:
                continue
            # a fresh interpreter per model reports its own peak RSS (ru_maxrss, KiB on Linux)
            code = ("import resource, sys; from audio.separate import main; status = main(sys.argv[1:]); "
                    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); raise SystemExit(status)")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code, "--ckpt_path", checkpoint, str(song), "--out", folder],
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                row.error = f"audio.separate failed on the {seconds:g} s track: {done.stderr.strip()[-300:]}"
                continue
            peak = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK_KIB"))
            row.measures.update({"long_seconds": round(elapsed, 1), "long_peak_gib": round(peak / 2**20, 3)})
            print(f"[separation] {row.model}: {seconds:g} s track separated in {elapsed:.0f} s, peak {peak / 2**20:.2f} GiB", flush=True)


def claims(rows: list[BenchRow]) -> list[str]:
    """The issue's targets, stated against the measured numbers."""
    by = {r.model: r for r in rows if not r.error}
    notes = []
    ht, floor, hd = by.get("HTDemucs"), by.get("mixture"), by.get("HDemucs")
    if ht is not None and floor is not None:
        margin = ht.metrics["sdr"] - floor.metrics["sdr"]
        notes.append(f"target HTDemucs sdr >= mixture + {FLOOR_MARGIN_DB:g} dB: {'met' if margin >= FLOOR_MARGIN_DB else 'MISSED'} "
                     f"({ht.metrics['sdr']:.2f} vs {floor.metrics['sdr']:.2f} dB, {margin:+.2f})")
    if ht is not None:
        # MDX SDR scores an all-zero estimate 0 dB, above the mixture floor: the model must beat silence too
        notes.append(f"HTDemucs vs a silent estimate (0 dB): {'above' if ht.metrics['sdr'] > 0 else 'NOT above'} "
                     f"({ht.metrics['sdr']:+.2f} dB)")
    if ht is not None and hd is not None:
        notes.append(f"HTDemucs vs HDemucs (same steps): {ht.metrics['sdr'] - hd.metrics['sdr']:+.2f} dB mean SDR")
    if ht is not None and "long_peak_gib" in ht.measures:
        peak = ht.measures["long_peak_gib"]
        notes.append(f"target full-length separation peak memory < {PEAK_LIMIT_GIB:g} GiB: "
                     f"{'met' if peak < PEAK_LIMIT_GIB else 'MISSED'} ({peak:.2f} GiB, {ht.measures['long_seconds']:.0f} s)")
    return notes
