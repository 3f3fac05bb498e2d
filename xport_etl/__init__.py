"""xport-etl: a reporting pipeline for the Xportcn OpenAPI (extract → land → normalise → DuckDB).

The library never imports Airflow: every step runs from the CLI, a notebook or pytest.
"""

__version__ = "0.1.0"
