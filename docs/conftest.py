"""pytest in docs/: run the >>> snippets of the pages, nothing generated.

``make -C docs doctest`` runs the snippets of the hand-written pages with
``--doctest-glob="*.rst"``. The configuration and the gallery's generated
copies of the examples must not be imported as doctest modules.
"""

collect_ignore = ["conf.py", "_gallery_order.py", "sg_execution_times.rst"]
collect_ignore_glob = ["_build/*", "_intersphinx/*", "generated/*", "auto_examples/*"]
