"""xport-etl: a reporting pipeline for the Xportcn OpenAPI (extract → land → normalise → DuckDB).

The library never imports Airflow: every step runs from the CLI, a notebook or pytest.
"""

import os

__version__ = "0.1.0"

# Arrow's allocator for this process, chosen when pyarrow is first imported (hence here, before
# any module of ours imports it): the system allocator unless ARROW_DEFAULT_MEMORY_POOL says
# otherwise. Arrow's default (mimalloc) keeps more memory resident while windows are staged at
# once, at no measurable speed gain (bench/NOTES.md, "Memory").
# ``pyarrow.set_memory_pool`` would not do: the Parquet writer allocates from the C++ default.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
