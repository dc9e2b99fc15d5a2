"""`attn`: the suite's command line, and the one place its errors are turned into one line.

    attn --help                                   what the suite is, every domain's configs, MLflow
    attn fit --config timeseries/configs/dlinear_etth1.yaml [--key=value ...]
    attn fit --config ... --trainer.max_steps=5   a smoke run of any config
    attn report [--experiment NAME] --out DIR     tables and plots of the tracked runs (`core.report`)
    attn compare EXPERIMENT ...                   the latest results per model (`attn-compare`)

`fit|validate|test|predict` are Lightning CLI (`core.lightning_cli.AttnCLI`, imported only then:
`attn --help` answers without loading torch). From the console, a data or config error (a bad
file, an invalid value, a missing config, a checkpoint of another config) prints one line naming
the file or argument and the fix, and exits non-zero; `--debug` or `ATTN_DEBUG=1` shows the
traceback. Called with `args` from Python, `main` raises the error instead (pass `friendly=True`
for the console behaviour). Framework tips and known deprecation warnings are silenced
(`quiet_framework`).

`AttnCLI`, `fit_and_test` and the CLI's helpers stay importable from here (`from core.cli import AttnCLI`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
COMMANDS = (*LIGHTNING_SUBCOMMANDS, "report", "compare", "register")

# Warnings of the pinned stack that say nothing about the user's run (module docstring).
_KNOWN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",  # lightning's pytree use under torch 2.11
    r"LightningCLI's args parameter.*",  # `main` passes sys.argv on as args
    r".*does not have many workers.*",  # the suite's loaders are in-process by design (2-core CI)
    r".*Checkpoint directory .* exists and is not empty.*",
    r"The dirpath has changed from .*",  # a resumed fit writes into its own run's folder
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*Total length of .* across ranks is zero.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*Add type hints to the `predict` method.*",  # MLflow, on the suite's pyfunc (core.serving: hints are no schema)
)
# Log lines of the frameworks that are advice or banner, not news about the run.
_NOISE = re.compile(r"^(💡 Tip|GPU available|TPU available|HPU available|Experiment with name .* not found)")


def __getattr__(name: str) -> Any:
    """`AttnCLI`, `fit_and_test`, ... from `core.lightning_cli`, imported on first use."""
    if name.startswith("__"):  # the import system probes `__path__` & co.; they must not load Lightning
        raise AttributeError(name)
    import core.lightning_cli

    try:
        return getattr(core.lightning_cli, name)
    except AttributeError:
        raise AttributeError(f"module 'core.cli' has no attribute {name!r}") from None


def main(args: list[str] | None = None, *, friendly: bool | None = None) -> None:
    """Console entry point of `attn` (module docstring); `friendly` defaults to True for the console."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("ATTN_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    friendly = args is None if friendly is None else friendly
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(suite_help())
        return
    command = argv[0]
    if command not in COMMANDS and not command.startswith("-"):
        _fail("attn", f"unknown command {command!r}; choose one of {', '.join(COMMANDS)} (attn --help)", code=2)
    quiet_framework()
    try:
        if command == "report":
            from core.report import main as report_main

            report_main(argv[1:])
        elif command == "compare":
            from core.compare import main as compare_main

            compare_main(argv[1:])
        elif command == "register":
            from core.serving import register_main

            register_main(argv[1:])
        else:
            from core.lightning_cli import AttnCLI

            with config_of_checkpoint(argv) as full:
                AttnCLI(args=full)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as err:
        if debug or not friendly:
            raise
        _fail(f"attn {command}", describe_error(err))


@contextmanager
def config_of_checkpoint(argv: list[str]) -> Iterator[list[str]]:
    """`argv`, with `--config <the checkpoint's config>` added to a test/validate/predict that names none.

    Every checkpoint of `attn fit` carries its resolved config (`core.predict`), so
    `attn predict --ckpt_path CKPT --predict_path PATH` needs no YAML. The config goes to a
    temporary file for the duration of the command.
    """
    if argv[0] not in ("validate", "test", "predict") or any(a == "--config" or a.startswith("--config=") for a in argv):
        yield argv
        return
    ckpt = next((a.split("=", 1)[1] for a in argv if a.startswith("--ckpt_path=")), None)
    if ckpt is None and "--ckpt_path" in argv[:-1]:
        ckpt = argv[argv.index("--ckpt_path") + 1]
    if not ckpt or ckpt == "last":
        yield argv
        return
    from core.predict import config_from_checkpoint, with_preprocessor_from

    text, name = config_from_checkpoint(ckpt)
    if argv[0] == "predict":
        text = with_preprocessor_from(text, ckpt)
    with tempfile.TemporaryDirectory(prefix="attn-config-") as folder:
        path = Path(folder) / f"{name or 'config'}.yaml"  # the run is named after the fit's config
        path.write_text(text)
        yield [argv[0], "--config", str(path), *argv[1:]]


def _fail(prog: str, message: str, code: int = 1) -> None:
    sys.stderr.write(f"{prog}: error: {message}\n  (--debug or ATTN_DEBUG=1 shows the traceback)\n")
    raise SystemExit(code)


def describe_error(err: BaseException) -> str:
    """An exception as at most two lines: its message, prefixed by its type unless that says nothing more.

    The suite's own errors name the file, the problem and the fix (`ValueError(f"{path}: ...")`);
    an error from deep inside a library keeps its type so that it can be searched for.
    """
    message = str(err).strip()
    if "Does not validate against any of the" in message:  # jsonargparse, failing to build a class
        message = short_parse_error(message)
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [repr(err)]
    text = " ".join(lines[:2])
    if len(text) > 600:
        text = text[:597] + "..."
    plain = isinstance(err, ValueError | FileNotFoundError | ConnectionError | NotADirectoryError | IsADirectoryError)
    return text if plain else f"{type(err).__name__}: {text}"


def short_parse_error(message: str) -> str:
    """The part of a jsonargparse error that names the key, the value and what was expected.

    A value that fails inside a `class_path` comes back as a tree ("Parser key "model": Does not
    validate against any of the Union subtypes ... Problem with given class_path ... Parser key
    "kernel": Expected a typing.Literal[...]. Got value: flashy"); the message is its innermost
    line, after the full dotted key (`model.init_args.model.init_args.kernel`). A failed link
    (`core.lightning_cli._DATA_SIZES`) gives its own message.
    """
    link = re.search(r"Call to compute_fn of link .* failed: (.*)", message, flags=re.DOTALL)
    if link:
        return _tidy(link.group(1))
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) <= 2:
        return _tidy(re.sub(r'^(?:Parser key|Key) "([^"]+)":\s*', r"\1: ", " ".join(x.strip() for x in lines)))
    structure = re.compile(r"\s*(- )?(Parser key|Key|Problem with given class_path|Errors:|Subtypes:|Does not validate|"
                           r"Given value|Expected a <class 'NoneType'>)")
    details = [(len(line) - len(line.lstrip(" -")), i) for i, line in enumerate(lines) if not structure.match(line)]
    if not details:
        return _tidy(" ".join(x.strip() for x in lines[:2]))
    _, at = max(details)
    detail = lines[at].strip(" -")
    above = lines[at - 1].strip(" -")
    if above.startswith("Problem with given class_path"):
        detail = f"{above.removeprefix('Problem with given ').rstrip(':')}: {detail}"
    keys = [m.group(1) for line in lines[:at] if (m := re.match(r'\s*(?:- )?(?:Parser key|Key) "([^"]+)"', line))]
    return _tidy(f"{'.init_args.'.join(keys)}: {detail}" if keys else detail)


def _tidy(text: str) -> str:
    """Python type reprs in a parse error as a user writes them (`int`, `one of 'a', 'b'`)."""
    text = re.sub(r"Expected an? ", "Expected ", text.strip())
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return re.sub(r"typing\.Literal\[(.*?)\]", r"one of \1", text)


def quiet_framework() -> None:
    """Silence the frameworks' tips, banners and known deprecation warnings (`_KNOWN_WARNINGS`, `_NOISE`)."""
    for pattern in _KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")
    noise = logging.Filter()
    noise.filter = lambda record: not _NOISE.match(record.getMessage())  # type: ignore[method-assign]
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
                 "lightning.fabric.utilities.rank_zero", "lightning.pytorch.loggers.mlflow"):
        logger = logging.getLogger(name)
        if not any(getattr(f, "attn_noise", False) for f in logger.filters):
            noise.attn_noise = True  # type: ignore[attr-defined]
            logger.addFilter(noise)
    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def domain_configs(root: Path = ROOT) -> dict[str, list[str]]:
    """Every `<domain>/configs/*.yaml` of the repository, by domain (new domains appear by themselves)."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.glob("*/configs/*.yaml")):
        found.setdefault(path.parent.parent.name, []).append(path.stem)
    return found


def suite_help() -> str:
    """`attn --help`: what the suite is, its commands, every domain's configs and where runs are tracked."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "./mlflow/mlflow.db (local SQLite store)"
    configs = domain_configs()
    width = max((len(d) for d in configs), default=8) + 2
    listing = []
    for domain, names in configs.items():
        text = textwrap.fill(", ".join(names), width=100 - width - 2, subsequent_indent=" " * (width + 2))
        listing.append(f"  {domain:<{width}}{text}")
    return "\n".join([
        "attn: attention models for vision, audio, time series, recommender systems and molecules, each",
        "trained against its baselines with Lightning CLI; every run is tracked in MLflow.",
        "",
        "usage: attn {fit,validate,test,predict} --config CONFIG [--section.key=value ...] [--debug]",
        "       attn report [--experiment NAME] [--out DIR]      attn compare EXPERIMENT [--filter k=v]",
        "",
        "commands:",
        "  fit        train a config (--test_after_fit=true tests its best checkpoint in the same run)",
        "  validate   evaluate on the validation split       test   evaluate a checkpoint: --ckpt_path PATH",
        "  predict    a trained model on your own input: --ckpt_path CKPT --predict_path PATH [--output DIR]",
        "  report     Markdown/HTML tables and bar plots of the tracked runs (attn report --help)",
        "  compare    the latest test metrics of every model of an experiment (attn-compare --help)",
        "  register   register the best run of an experiment in the MLflow model registry (attn register --help)",
        "",
        "configs (attn fit --config <domain>/configs/<name>.yaml):",
        *(listing or ["  (none found next to this installation)"]),
        "",
        "  smoke run:    attn fit --config C --trainer.max_steps=5",
        "  resume:       attn fit --config C --ckpt_path last     (or a path to a .ckpt)",
        "  all options:  attn fit --help      resolved config: attn fit --config C --print_config",
        "  errors print one line; --debug (or ATTN_DEBUG=1) shows the traceback",
        "",
        f"tracking: MLflow at {uri}; set MLFLOW_TRACKING_URI for a shared server",
        "  make ui      the MLflow UI on the local store (http://127.0.0.1:5000)",
    ])


if __name__ == "__main__":
    main()
