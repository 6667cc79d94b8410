"""Sphinx configuration of the skvae documentation.

Build with ``make -C docs html`` (see ``docs/Makefile``). The build needs no
network: intersphinx reads the inventories shipped in ``docs/_intersphinx``,
MathJax is served from the build when ``sphinx-mathjax-offline`` is installed,
and the gallery's examples load only data bundled with installed packages.

Environment variables read here:

``SKVAE_EXAMPLE_QUICK``
    ``"1"`` (the default here and in the Makefile) runs every gallery example
    in its seconds-long smoke mode; ``"0"`` runs the full examples.

numpydoc validates every docstring the API reference shows; a violation is a
warning, so ``-W`` (``docs/build.sh``) fails the build on it. The checks left
out are in ``_numpydoc_checks.py``, which ``tests/test_docstrings.py`` reads
too.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the checkout, also when it is not installed
sys.path.insert(0, str(DOCS))  # _gallery_order, _numpydoc_checks

# The examples read these when the gallery runs them, in this process.
QUICK = os.environ.setdefault("SKVAE_EXAMPLE_QUICK", "1") == "1"

import _numpydoc_checks  # noqa: E402

import skvae  # noqa: E402

# sphinx-gallery reruns an example only when its source changed; a switch
# between quick and full mode must rerun them all, so drop its checksums then.
_MODE_STAMP = DOCS / "auto_examples" / ".example-mode"
_mode = "quick" if QUICK else "full"
if _MODE_STAMP.parent.is_dir() and (
    not _MODE_STAMP.is_file() or _MODE_STAMP.read_text().strip() != _mode
):
    for _md5 in _MODE_STAMP.parent.glob("*.md5"):
        _md5.unlink()
_MODE_STAMP.parent.mkdir(exist_ok=True)
_MODE_STAMP.write_text(_mode + "\n")

# sphinx-gallery resolves the names the examples use even when it does not run
# them (plot_gallery=0); IterativeImputer needs its opt-in import for that.
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401

# -- Project -----------------------------------------------------------------
project = "skvae"
author = "the skvae developers"
copyright = "the skvae developers"  # noqa: A001
release = skvae.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
try:  # MathJax from the build instead of a CDN (offline reading and tests).
    import importlib.util

    if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
        extensions.append("sphinx-mathjax-offline")
except ValueError:  # pragma: no cover - odd module name on some Pythons
    pass

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_intersphinx",
    "_gallery_order.py",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "conftest.py",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "literal"  # `x` in prose is code, as in the docstrings
nitpicky = False

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # types are in the numpydoc sections
autoclass_content = "class"

numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "RandomState": "numpy.random.RandomState",
    "torch.device": "torch.device",
    "Axes": "matplotlib.axes.Axes",
    "Figure": "matplotlib.figure.Figure",
    "SubFigure": "matplotlib.figure.SubFigure",
    "Colormap": "matplotlib.colors.Colormap",
    "MissingIndicator": "sklearn.impute.MissingIndicator",
    "MetadataRequest": "sklearn.utils.metadata_routing.MetadataRequest",
    "path-like": ":term:`python:path-like object`",
    "array-like": ":term:`sklearn:array-like`",
    "estimator": ":term:`sklearn:estimator`",
    # skvae's own classes, also from skvae.plotting's pages
    "VAETransformer": "skvae.VAETransformer",
    "VAEImputer": "skvae.VAEImputer",
    "VAEOutlierDetector": "skvae.VAEOutlierDetector",
    "VQVAETransformer": "skvae.VQVAETransformer",
    "SequenceVAE": "skvae.SequenceVAE",
}
# Words of the type descriptions that are prose, not objects to link.
numpydoc_xref_ignore = {
    "of", "shape", "or", "and", "default", "optional", "instance", "in",
    "the", "objects", "object", "type", "label", "labels", "series", "text",
    "sparse", "matrix", "Ignored", "Dask", "Array", "matplotlib",
    "int64", "float32", "float64",
    "n_samples", "n_features", "n_components", "n_features_out",
    "n_classes", "n_latents", "n_embeddings", "n_imputations", "n_steps",
    "n_rows", "n_timesteps", "n_channels", "n_cols", "n_values", "n_images",
    "n_columns", "n_outputs", "n_features_new", "embedding_dim", "height",
    "width", "channels",
}  # fmt: skip
# Every numpydoc check, each violation a warning, except (the reasons are in
# _numpydoc_checks.py, shared with tests/test_docstrings.py):
#   SA01  no "See Also" section: optional, written where a pointer helps;
#   ES01  no extended summary: optional, a one-line summary may say it all;
#   RT02  a named return value (``Z : ndarray ...``), as scikit-learn writes;
#   EX01  no "Examples" section, for a method: its class's example shows it.
#         numpydoc leaves a check out for all objects or none, so EX01 on
#         classes and functions is reported by _report_missing_examples.
numpydoc_validation_checks = {
    "all",
    *_numpydoc_checks.EXCLUDED,
    *_numpydoc_checks.EXCLUDED_FOR_MEMBERS,
}

# -- intersphinx: offline, from the inventories in _intersphinx ----------------
# Each file lists only the objects these pages link to, with their public
# URLs (see _intersphinx/README.rst). No inventory is fetched at build time.
_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
    "dask": "https://docs.dask.org/en/stable/",
}
intersphinx_mapping = {
    name: (url, str(DOCS / "_intersphinx" / f"{name}.inv"))
    for name, url in _INVENTORIES.items()
    if (DOCS / "_intersphinx" / f"{name}.inv").exists()
}
intersphinx_timeout = 1

# -- myst (benchmarks/README.md and CHANGELOG.md) ------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 4
suppress_warnings = ["myst.header"]  # the markdown files start at "#", not "="

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|/figures/",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "doc_module": ("skvae",),
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "default_thumb_file": None,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "run_stale_examples": False,
}

# -- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvae {release}"
html_static_path = ["_static"]
html_css_files = ["skvae.css"]
html_show_sourcelink = False
html_copy_source = True  # the search page shows snippets from the sources
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "show_prev_next": True,
}
if QUICK:
    html_theme_options["announcement"] = (
        "This build ran the gallery in quick mode (SKVAE_EXAMPLE_QUICK=1): "
        "the examples' numbers and figures come from seconds-long smoke runs "
        "on tiny data, not from the full examples."
    )
# The theme needs a default colour mode; without one its script logs an error
# on a first visit (nothing in localStorage yet).
html_context = {"default_mode": "auto"}
html_sidebars = {
    "index": [],
    "install": [],
    "getting_started": [],
    "benchmarks": [],
    "changelog": [],
}


def _gallery_sandbox(app) -> None:
    """Send what the gallery's examples write into the build folder.

    The examples write their figures to ``SKVAE_FIGURE_DIR`` and scratch data
    (the Parquet example) to the temporary folder; both go under
    ``<build>/gallery-run`` so that a docs build writes nowhere else.
    """
    run_dir = Path(app.doctreedir).parent / "gallery-run"
    figures, scratch = run_dir / "figures", run_dir / "tmp"
    figures.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ["SKVAE_FIGURE_DIR"] = str(figures)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)


def _benchmark_table(app) -> None:
    """Write the table of ``benchmarks/bench_*.py`` that benchmarks.md includes.

    One row per script found, with the first line of its docstring and a link
    to its section of ``benchmarks/README.md`` (a heading that names the
    script); a script without a section yet is listed as such, so the page
    always lists every script and the build does not fail on a new one.
    """
    import ast
    import re

    try:  # myst-parser >= 5.2
        from myst_parser.slugs import github_slugify
    except ImportError:  # older myst-parser
        from myst_parser.mdit_to_docutils.base import default_slugify as github_slugify

    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    sections = {}
    for match in re.finditer(r"^#{2,4} (.*\(`(bench_\w+\.py)`\).*)$", readme, re.M):
        title, script = match.groups()
        sections.setdefault(
            script,
            (
                re.sub(r"\s*\(`bench_\w+\.py`\)", "", title),
                github_slugify(title.replace("`", "")),
            ),
        )
    rows = [
        "| script | what it measures | protocol, command and results |",
        "|---|---|---|",
    ]
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary = doc.strip().split("\n")[0].replace("``", "`").replace("|", "\\|")
        if path.name in sections:
            name, slug = sections[path.name]
            where = f"[{name}](#{slug})"
        else:
            where = "not in `benchmarks/README.md` yet; see the script's docstring"
        rows.append(f"| `{path.name}` | {summary} | {where} |")
    out = DOCS / "generated" / "benchmark_scripts.txt"
    out.parent.mkdir(exist_ok=True)
    text = "\n".join(rows) + "\n"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")


_EX01_CHECKED: set[str] = set()


def _report_missing_examples(app, what, name, obj, options, lines) -> None:
    """Warn about a class or function of skvae without an "Examples" section.

    numpydoc's check EX01, which ``numpydoc_validation_checks`` leaves out for
    every object because methods need no such section; classes and functions
    do (``_numpydoc_checks.excluded``). Once per object: autosummary's tables
    read the docstrings too.
    """
    if (
        not name.startswith("skvae.")
        or "EX01" in _numpydoc_checks.excluded(what)
        or name in _EX01_CHECKED
    ):
        return
    _EX01_CHECKED.add(name)
    from numpydoc.validate import validate
    from sphinx.util import logging

    for code, message in validate(name)["errors"]:
        if code == "EX01":
            logging.getLogger(__name__).warning(
                "[numpydoc] Validation warnings while processing docstring "
                "for %r:\n  %s: %s",
                name,
                code,
                message,
            )


def setup(app):
    """Run before sphinx-gallery executes the examples (priority < 500)."""
    app.connect("builder-inited", _gallery_sandbox, priority=100)
    app.connect("builder-inited", _benchmark_table, priority=100)
    app.connect("autodoc-process-docstring", _report_missing_examples)
