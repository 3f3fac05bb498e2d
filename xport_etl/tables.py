"""The warehouse's fact tables by name: a plain tuple without imports, so the DAG files can build
their Assets from it at parse time (``schemas.py``, which imports pyarrow, holds the columns)."""

FACT_TABLES = ("fct_orders", "fct_order_lines", "fct_refunds", "fct_parcels", "fct_parcel_events")
