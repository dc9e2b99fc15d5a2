"""`attn report`: every tracked run as comparison tables (Markdown, HTML) and bar plots.

    attn report                                   every experiment of the store -> ./report/
    attn report --experiment timeseries/forecast/ETTh1 --out /tmp/etth1
    MLFLOW_TRACKING_URI=http://host:5000 attn report --filter horizon=96

Runs are grouped as `attn-compare` groups them (experiment, settings such as horizon/scale/split,
then config, model and kernel; `core.compare.group_key`); each group's test metrics are the mean
and the sample standard deviation over its runs (its seeds; the newest run per seed counts).
The task's main metric (`MAIN_METRICS`: the one number a task is judged by, and whether lower or
higher is better) orders each table, marks its best row and is drawn per model as a bar plot.
`report.md`, `report.html` and `plots/*.png` are written to `--out` and logged as artifacts of a
run in the MLflow experiment `reports` (unless `--no-mlflow`). Smoke runs are left out unless
`--include-smoke`.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.compare import finished_records, group_key, parse_filters, select

REPORT_EXPERIMENT = "reports"

# The metric each task is judged by (test split, without the `test/` prefix) and its direction;
# a task with several candidates (molecules: regression or classification datasets) uses the first
# one its runs have.
MAIN_METRICS: dict[str, tuple[tuple[str, Literal["min", "max"]], ...]] = {
    "forecast": (("mse", "min"),),
    "lowlight": (("psnr", "max"),),
    "sr": (("psnr", "max"),),
    "ctr": (("roc_auc", "max"),),
    "property": (("rmse", "min"), ("roc_auc", "max")),
    "tagging": (("roc_auc", "max"),),
    "separation": (("sdr", "max"),),
    "hsi_detection": (("map50", "max"),),
}


def main_metric(task: str, metrics: Sequence[str]) -> tuple[str, Literal["min", "max"]] | None:
    """The main metric of `task` among the metric names its runs have (`MAIN_METRICS`), None if unknown."""
    return next(((name, way) for name, way in MAIN_METRICS.get(task, ()) if name in metrics), None)


@dataclass
class Group:
    """One row of a report: the runs of one model, config and kernel under one setting, over seeds."""

    model: str
    role: str
    config: str
    kernel: str
    settings: dict[str, str]
    params: int | None
    seeds: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)

    def mean(self, metric: str) -> float | None:
        values = [v for v in self.values.get(metric, []) if not math.isnan(v)]
        return statistics.fmean(values) if values else None

    def spread(self, metric: str) -> float | None:
        """Sample standard deviation over seeds (None with fewer than two)."""
        values = [v for v in self.values.get(metric, []) if not math.isnan(v)]
        return statistics.stdev(values) if len(values) > 1 else None


@dataclass
class Section:
    """The groups of one experiment under one setting, with the task's main metric."""

    experiment: str
    task: str
    settings: dict[str, str]
    groups: list[Group]
    main: tuple[str, Literal["min", "max"]] | None

    @property
    def title(self) -> str:
        where = " ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.experiment}" + (f" ({where})" if where else "")

    @property
    def metrics(self) -> list[str]:
        names = list(dict.fromkeys(m for g in self.groups for m in g.values))
        if self.main:
            names.remove(self.main[0])
            names.insert(0, self.main[0])
        return names

    def best(self) -> Group | None:
        """The group with the best mean main metric (None without a main metric)."""
        if not self.main:
            return None
        scored = [g for g in self.groups if g.mean(self.main[0]) is not None]
        if not scored:
            return None
        pick = min if self.main[1] == "min" else max
        return pick(scored, key=lambda g: g.mean(self.main[0]))


def sections(records: Sequence[dict[str, Any]], experiment_names: Mapping[str, str]) -> list[Section]:
    """Records (`core.compare.run_record`, newest first) grouped into report sections and rows.

    `experiment_names` maps experiment ids to names. Per group and seed, the newest run counts.
    """
    by_section: dict[tuple, dict[tuple, Group]] = {}
    tasks: dict[tuple, str] = {}
    for record in records:
        experiment = experiment_names[record["experiment_id"]]
        key = group_key(record)
        section_key = (experiment, key[0])
        tasks.setdefault(section_key, record["task"])
        groups = by_section.setdefault(section_key, {})
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(
                model=record["model"], role=record["role"], config=record["config"], kernel=record["kernel"],
                settings=record["settings"], params=record["params"],
            )
        if record["seed"] in group.seeds:  # an older run of a seed already counted
            continue
        group.seeds.append(record["seed"])
        group.run_ids.append(record["run_id"])
        for name, value in record["metrics"].items():
            group.values.setdefault(name, []).append(float(value))
    out = []
    for (experiment, settings), groups in sorted(by_section.items()):
        names = list(dict.fromkeys(m for g in groups.values() for m in g.values))
        main = main_metric(tasks[(experiment, settings)], names)
        ordered = sorted(groups.values(), key=lambda g: (g.role != "baseline", g.model, g.config, g.kernel))
        if main:
            sign = 1 if main[1] == "min" else -1
            ordered.sort(key=lambda g: math.inf if g.mean(main[0]) is None else sign * g.mean(main[0]))
        out.append(Section(experiment, tasks[(experiment, settings)], dict(settings), ordered, main))
    return out


def _cell(group: Group, metric: str) -> str:
    mean, spread = group.mean(metric), group.spread(metric)
    if mean is None:
        return "-"
    return f"{mean:.4g}" if spread is None else f"{mean:.4g} ± {spread:.2g}"


def _header(section: Section) -> list[str]:
    arrows = {"min": "↓", "max": "↑"}
    metrics = [f"{m} {arrows[section.main[1]]}" if section.main and m == section.main[0] else m for m in section.metrics]
    return ["model", "role", "config", "kernel", "seeds", "params", *metrics]


def _rows(section: Section) -> list[list[str]]:
    best = section.best()
    rows = []
    for g in section.groups:
        name = f"**{g.model}**" if g is best else g.model
        params = "-" if g.params is None else f"{g.params:,}"
        rows.append([name, g.role, g.config or "-", g.kernel, str(len(g.seeds)), params, *(_cell(g, m) for m in section.metrics)])
    return rows


def markdown(report: Sequence[Section], plots: Mapping[str, str], source: str) -> str:
    """The report as Markdown: one table per section (best main metric in bold), its plot below."""
    lines = ["# attn report", "", f"Tracking store: `{source}`. Mean ± sample std over seeds; "
             "the best main metric of each table in bold.", ""]
    for section in report:
        lines += [f"## {section.title}", ""]
        if section.main:
            way = "lower" if section.main[1] == "min" else "higher"
            lines += [f"Main metric: test/{section.main[0]} ({way} is better).", ""]
        header = _header(section)
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in _rows(section)]
        if section.title in plots:
            lines += ["", f"![{section.title}]({plots[section.title]})"]
        lines.append("")
    return "\n".join(lines)


def html_page(report: Sequence[Section], plots: Mapping[str, str], source: str) -> str:
    """The report as one self-contained HTML page (plots linked relative to it)."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>attn report</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".best{font-weight:bold;background:#eef7ee}</style></head><body>",
        f"<h1>attn report</h1><p>Tracking store: <code>{html.escape(source)}</code>. Mean ± sample std over seeds; "
        "the best main metric of each table is highlighted.</p>",
    ]
    for section in report:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.main:
            way = "lower" if section.main[1] == "min" else "higher"
            parts.append(f"<p>Main metric: test/{html.escape(section.main[0])} ({way} is better).</p>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _header(section)) + "</tr>")
        best = section.best()
        for group, row in zip(section.groups, _rows(section), strict=True):
            row[0] = group.model
            css = " class='best'" if group is best else ""
            parts.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
        if section.title in plots:
            parts.append(f"<img src='{html.escape(plots[section.title])}' alt='{html.escape(section.title)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def bar_plot(section: Section, path: Path) -> None:
    """The main metric's mean per model (error bar: std over seeds), baselines grey, models blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, way = section.main  # type: ignore[misc]
    groups = [g for g in section.groups if g.mean(metric) is not None]
    labels = [g.model if not g.config or g.config.lower() == g.model.lower() else f"{g.model}\n{g.config}" for g in groups]
    labels = [f"{label}\n{g.kernel}" if g.kernel != "none" else label for label, g in zip(labels, groups, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(groups) + 1.5), 3.8))
    ax.bar(range(len(groups)), [g.mean(metric) for g in groups], yerr=[g.spread(metric) or 0.0 for g in groups],
           color=["#999999" if g.role == "baseline" else "#3b75af" for g in groups], capsize=4)
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.set_ylabel(f"test/{metric} ({'lower' if way == 'min' else 'higher'} is better)")
    ax.set_title(section.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: Sequence[Section], out: Path, source: str) -> list[Path]:
    """Write `report.md`, `report.html` and `plots/*.png` under `out`; returns the files written."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    written = []
    for section in report:
        if not section.main:
            continue
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", section.title).strip("_") + ".png"
        bar_plot(section, out / "plots" / name)
        plots[section.title] = f"plots/{name}"
        written.append(out / "plots" / name)
    for filename, text in (("report.md", markdown(report, plots, source)), ("report.html", html_page(report, plots, source))):
        (out / filename).write_text(text, encoding="utf-8")
        written.append(out / filename)
    return written


def build(client: Any, experiments: Sequence[str] = (), *, include_smoke: bool = False,
          filters: Mapping[str, str] | None = None) -> list[Section]:
    """The report's sections from the store behind `client`: the named experiments, or every one but `reports`."""
    found = {e.name: e for e in client.search_experiments()}
    if experiments:
        missing = [name for name in experiments if name not in found]
        if missing:
            raise SystemExit(f"attn report: no experiment {', '.join(map(repr, missing))}; found {sorted(found)}")
        chosen = [found[name] for name in experiments]
    else:
        chosen = [e for name, e in sorted(found.items()) if name != REPORT_EXPERIMENT]
    names = {e.experiment_id: e.name for e in chosen}
    if not names:
        return []
    records = finished_records(client, list(names))
    return sections(select(records, include_smoke=include_smoke, filters=filters), names)


def log_report(client: Any, files: Sequence[Path], out: Path, experiments: Sequence[str]) -> str:
    """Log the written files as artifacts of a new run in the experiment `reports`; returns its run id."""
    from core.tracking import local_artifact_location

    found = client.get_experiment_by_name(REPORT_EXPERIMENT)
    experiment_id = found.experiment_id if found else client.create_experiment(
        REPORT_EXPERIMENT, artifact_location=local_artifact_location(REPORT_EXPERIMENT))
    run = client.create_run(experiment_id, run_name=f"report {time.strftime('%Y-%m-%d %H:%M:%S')}",
                            tags={"report_of": ", ".join(experiments)[:5000] or "all"})
    for path in files:
        folder = path.parent.relative_to(out).as_posix()
        client.log_artifact(run.info.run_id, str(path), None if folder == "." else folder)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `attn report` (module docstring)."""
    parser = argparse.ArgumentParser(prog="attn report", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", nargs="+", default=[], metavar="NAME", help="MLflow experiments (default: all)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="folder for report.md, report.html and plots/")
    parser.add_argument("--filter", nargs="+", default=[], metavar="KEY=VALUE", help="as attn-compare --filter")
    parser.add_argument("--include-smoke", action="store_true", help="also count smoke runs")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report back as a run's artifacts")
    args = parser.parse_args(argv)
    from mlflow.tracking import MlflowClient

    from core.tracking import check_tracking_uri, default_tracking_uri

    uri = default_tracking_uri()
    check_tracking_uri(uri)
    client = MlflowClient(uri)
    report = build(client, args.experiment, include_smoke=args.include_smoke, filters=parse_filters(args.filter))
    files = write_report(report, args.out, uri)
    rows = sum(len(s.groups) for s in report)
    print(f"attn report: {len(report)} tables, {rows} rows -> {args.out / 'report.md'}, {args.out / 'report.html'}")
    if not args.no_mlflow:
        run_id = log_report(client, files, args.out, args.experiment)
        print(f"attn report: logged as run {run_id[:8]} of the experiment {REPORT_EXPERIMENT!r} ({uri})")


if __name__ == "__main__":
    main()
