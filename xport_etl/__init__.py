"""xport-etl: a reporting pipeline for the Xportcn OpenAPI (extract → land → normalise → DuckDB).

The library never imports Airflow: every step runs from the CLI, a notebook or pytest.

Importing it defines things and does one thing more, on purpose: it sets the environment variable
``ARROW_DEFAULT_MEMORY_POOL`` to ``system`` unless it is set already. Arrow chooses its allocator
once, when pyarrow is first imported, and only from that variable (``pyarrow.set_memory_pool`` does
not reach the Parquet writer, which allocates from the C++ default); Arrow's default, mimalloc,
kept 60-80 MB more resident while windows were staged at once, at no gain in speed (bench/NOTES.md,
"Memory"). So it has to happen before any module of ours imports pyarrow, hence here; the staging
worker processes inherit it. A choice of your own (the variable set before the import) is kept.
Nothing else happens at import time: no file is read or written, no umask or setting changes
(``tests/test_import_side_effects.py``).
"""

__version__ = "0.1.0"

from xport_etl.settings import prefer_system_allocator  # noqa: E402 (after __version__)

prefer_system_allocator()
