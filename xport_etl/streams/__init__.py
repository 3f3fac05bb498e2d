"""The pipeline's streams, each declared once: see :mod:`xport_etl.streams.spec` for what a stream
is made of, :mod:`xport_etl.streams.taobao` and :mod:`xport_etl.streams.alibaba` for the
declarations, and :mod:`xport_etl.streams.graph` for what is derived from them (``run``'s order,
the CLI's choices, the DAG's task groups)."""
