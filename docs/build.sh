#!/usr/bin/env bash
# The docs check for CI: a clean build of the site with the gallery in quick
# mode and every Sphinx warning an error. (The >>> snippets of the pages run
# in the test suite: tests/test_docs_pages.py.)
#
#   bash docs/build.sh            (from anywhere; needs the docs extra)
#
# The site lands in docs/_build/html, where tests/test_docs_site.py (run by
# the test suite) opens it in Chromium.
set -euo pipefail
cd "$(dirname "$0")"

export SKVAE_EXAMPLE_QUICK=1
# One thread per process: the examples and the doctests train small models,
# and more threads only compete for the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"

start=$(date +%s)
make clean >/dev/null
make html SPHINXOPTS="-W --keep-going"
echo "docs: built and checked in $(( $(date +%s) - start )) s"
