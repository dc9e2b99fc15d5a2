"""`make demo`: each domain's attention model against its strongest baseline, one table at the end.

    make demo                                    every part, on the embedded defaults (no download)
    make demo DOMAINS="timeseries molecules"     the parts of some domains (names as the packages)

A part is a file `<domain>/demo*.mk`: a make target `demo-<part>` that trains the attention model
and the baseline through `attn fit` or `attn-bench` (the same training path) into MLflow, and a
make variable of the same name, `<MLflow experiment> <model> <baseline>` (the runs' `model` tags),
that says where their runs land. This module runs the chosen parts one after another
(`make demo-<part>`) with their output appended to the log (`demo.log`) and one progress line each
on the screen, then reads the runs each part made after it began (`core.compare`) and prints one
table: the task's main metric (`core.report.MAIN_METRICS`) for model and baseline, which is better,
and each run's seconds in MLflow (fit and test). What the bench commands print about the full
benchmarks' targets ("target ... MISSED") is not a claim about these short runs: it stays in the log.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.compare import finished_records, select
from core.report import MAIN_METRICS, main_metric

COLUMNS = ("domain", "task", "dataset", "model", "baseline", "metric", "model value", "baseline value", "better",
           "model s", "baseline s")
# Lines of the full benchmarks' claims (audio.bench, audio.separation_bench, molecules.bench, vision.benchmarks.hsi).
CLAIM = re.compile(r"^(target .*: (met|MISSED)\b|claim: )")
# Lines after a part's real error: make's "*** [target] Error 2" and the CLI's "(--debug ... shows the traceback)".
AFTER_ERROR = re.compile(r"^(make(\[\d+\])?: \*\*\*|\(.*\)$)")
ARROWS = {"min": "↓", "max": "↑"}


@dataclass(frozen=True)
class Part:
    """One part of the demo, as a `<domain>/demo*.mk` file declares it.

    Attributes:
        target: the make target that trains both runs (`demo-recsys`).
        experiment: the MLflow experiment both runs land in, `<domain>/<task>/<dataset>`.
        model: the attention model's `model` tag (its class name, `Hiformer`).
        baseline: the baseline's `model` tag (`DCNv2`).
    """

    target: str
    experiment: str
    model: str
    baseline: str

    @property
    def domain(self) -> str:
        return self.experiment.split("/")[0]

    @property
    def task(self) -> str:
        return self.experiment.split("/")[1]

    @property
    def dataset(self) -> str:
        return self.experiment.split("/", 2)[2]


def parse_part(spec: str) -> Part:
    """`"demo-recsys recsys/ctr/synthetic Hiformer DCNv2"` (target and its make variable) -> a `Part`."""
    words = spec.split()
    if len(words) != 4 or len(words[1].split("/")) < 3:
        raise SystemExit(f"make demo: part {spec!r}: expected 'TARGET DOMAIN/TASK/DATASET MODEL BASELINE' "
                         "(the target and its variable in a */demo*.mk file)")
    return Part(*words)


def select_parts(parts: Sequence[Part], domains: str | Sequence[str]) -> list[Part]:
    """The parts of the named domains, in their order (every part when none is named); an unknown name fails in one line."""
    names = domains.split() if isinstance(domains, str) else list(domains)
    known = sorted({p.domain for p in parts})
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"make demo: unknown domain {', '.join(map(repr, unknown))} in DOMAINS; "
                         f"the demo has {', '.join(known)}")
    return [p for p in parts if not names or p.domain in names]


def part_row(client: Any, part: Part, since_ms: int) -> dict[str, str]:
    """The table row of `part` from the newest model and baseline runs started at or after `since_ms`.

    A missing run (the part failed, or its run has no test metrics) shows as `missing`, and
    `better` as `-`; the row is still built.
    """
    found = client.get_experiment_by_name(part.experiment)
    records = select(finished_records(client, [found.experiment_id])) if found else []
    recent = [r for r in records if r["start_time"] >= since_ms]  # newest first
    runs = {name: next((r for r in recent if r["model"] == name), None) for name in (part.model, part.baseline)}
    names = [m for r in runs.values() if r for m in r["metrics"]]
    main = main_metric(part.task, names) or next(iter(MAIN_METRICS.get(part.task, ())), None)
    values = {name: _value(run, main) for name, run in runs.items()}
    row = {"domain": part.domain, "task": part.task, "dataset": part.dataset, "model": part.model,
           "baseline": part.baseline, "metric": f"{main[0]} {ARROWS[main[1]]}" if main else "-"}
    for key, name in (("model", part.model), ("baseline", part.baseline)):
        row[f"{key} value"] = "missing" if runs[name] is None else "-" if values[name] is None else f"{values[name]:.4g}"
        row[f"{key} s"] = "-" if runs[name] is None else _seconds(client, runs[name]["run_id"])
    row["better"] = _better(values[part.model], values[part.baseline], main, part)
    return row


def _value(run: dict[str, Any] | None, main: tuple[str, str] | None) -> float | None:
    value = run["metrics"].get(main[0]) if run and main else None
    return None if value is None or math.isnan(value) else float(value)


def _better(model: float | None, baseline: float | None, main: tuple[str, str] | None, part: Part) -> str:
    if model is None or baseline is None or main is None:
        return "-"
    if model == baseline:
        return "tie"
    model_wins = model < baseline if main[1] == "min" else model > baseline
    return part.model if model_wins else part.baseline


def _seconds(client: Any, run_id: str) -> str:
    info = client.get_run(run_id).info
    return "-" if info.end_time is None else f"{(info.end_time - info.start_time) / 1000:.0f}"


def run_part(part: Part, log: Path, label: str) -> int:
    """`make <target>` with its output appended to `log` and one progress line; returns make's exit code."""
    print(f"{label} {part.domain}: {part.model} vs {part.baseline} ...", end=" ", flush=True)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n===== {label} make {part.target} ({time.strftime('%H:%M:%S')}) =====\n")
        out.flush()
        offset = out.tell()
        start = time.time()
        code = subprocess.call(["make", "--no-print-directory", part.target], stdout=out, stderr=subprocess.STDOUT)
        seconds = time.time() - start
    if code == 0:
        print(f"done in {seconds:.0f} s", flush=True)
    else:
        print(f"FAILED (exit {code}) after {seconds:.0f} s: {last_line(log, offset)}", flush=True)
    return code


def last_line(log: Path, offset: int) -> str:
    """The last line a part wrote to `log` after `offset` (its error), claims and `AFTER_ERROR` lines left out."""
    with log.open(encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line and not CLAIM.match(line) and not AFTER_ERROR.match(line)]
    return lines[-1][:300] if lines else "(no output)"


def ui_command(uri: str) -> str:
    """How to open the MLflow UI on the store the runs went to."""
    local = Path("mlflow/mlflow.db").resolve()
    if uri == f"sqlite:///{local}":
        return "make ui  (http://127.0.0.1:5000)"
    if uri.startswith("sqlite:") or uri.startswith("file:"):
        return f".venv/bin/mlflow ui --backend-store-uri {uri}"
    return f"open {uri}"


def main(argv: list[str] | None = None) -> None:
    """Entry point of `make demo` (`python -m core.demo [--domains NAMES] [--log PATH] PART...`)."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", metavar="PART", help="'TARGET EXPERIMENT MODEL BASELINE' (from */demo*.mk)")
    parser.add_argument("--domains", default="", help="space-separated domain names (default: all)")
    parser.add_argument("--log", type=Path, default=Path("demo.log"), help="file that receives every part's output")
    args = parser.parse_args(argv)
    parts = select_parts([parse_part(spec) for spec in args.parts], args.domains)
    log = args.log.resolve()
    log.write_text(f"make demo {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(p.target for p in parts)}\n", encoding="utf-8")
    print(f"make demo: {len(parts)} parts ({', '.join(dict.fromkeys(p.domain for p in parts))}); full logs in {log}", flush=True)
    begun, starts, failed = time.time(), [], []
    for i, part in enumerate(parts, 1):
        starts.append(int(time.time() * 1000))  # the part's runs are the ones started from here on
        if run_part(part, log, f"[{i}/{len(parts)}]"):
            failed.append(part.target)
    from mlflow.tracking import MlflowClient

    from core.bench import format_table
    from core.tracking import default_tracking_uri

    uri = default_tracking_uri()
    client = MlflowClient(uri)
    rows = [part_row(client, part, since) for part, since in zip(parts, starts, strict=True)]
    print(f"\nmake demo: {len(parts)} parts in {time.time() - begun:.0f} s; runs in {uri}; "
          "model s / baseline s: each run's time in MLflow (fit and test)\n")
    print(format_table(rows, COLUMNS))
    missing = [f"{r['domain']} {r['task']}" for r in rows if "missing" in (r["model value"], r["baseline value"])]
    if failed or missing:
        print(f"\nFailed parts: {', '.join(failed) or 'none'}; rows with a missing run: {', '.join(missing) or 'none'}"
              f" (details in {log})")
    print(f"\nSee every run in the MLflow UI: {ui_command(uri)}")
    if failed or missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
