"""xport-etl: a reporting pipeline for the Xportcn OpenAPI (extract → land → normalise → DuckDB).

The library never imports Airflow: every step runs from the CLI, a notebook or pytest.
"""

__version__ = "0.1.0"

# Arrow's allocator for this process is chosen when pyarrow is first imported, hence here, before
# any module of ours imports it: the system allocator unless ARROW_DEFAULT_MEMORY_POOL says
# otherwise (see xport_etl.settings.prefer_system_allocator). ``pyarrow.set_memory_pool`` would
# not do: the Parquet writer allocates from the C++ default.
from xport_etl.settings import prefer_system_allocator  # noqa: E402 (after __version__)

prefer_system_allocator()
