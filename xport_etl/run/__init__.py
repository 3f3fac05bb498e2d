"""The engine that runs the declared streams (:mod:`xport_etl.streams`), one job per module.

- :mod:`~xport_etl.run.windows`: window arithmetic (bounds in UTC, chunks, bounded runs, the
  incremental window a stream's cursor reads for a data interval).
- :mod:`~xport_etl.run.paging`: extracting one window of a list stream (paging passes, drift,
  the catch-up), and the client a command uses.
- :mod:`~xport_etl.run.fanout`: a fan-out stream's keys (its key query over the run's next state)
  and one detail call per key, landed in batches.
- :mod:`~xport_etl.run.stage`: staging landed windows to Parquet: threads for the DuckDB fast path
  (:class:`~xport_etl.run.stage.SqlStager`), processes or one by one for the Python normalisers.
- :mod:`~xport_etl.run.state`: a run's next state: merge staged windows into it, publish it once,
  record the windows in the run ledger; ``xport-etl load`` in one go.
- :mod:`~xport_etl.run.plan`: the resumable plan of a command and the run lock.
- :mod:`~xport_etl.run.lander`: the list windows of a command's bounded runs, paged several at once
  and staged as they land.
- :mod:`~xport_etl.run.engine`: ``xport-etl run``/``backfill``: bounded runs, each lists → merge →
  fan-outs in the graph's order → merge → publish.
- :mod:`~xport_etl.run.tasks`: the steps the Airflow tasks call, one DAG run in several processes.
- :mod:`~xport_etl.run.steps`: a run's id (one per CLI command or DAG run) and the steps it
  records.

Every window is recorded in the run ledger (the data layout's ``runs``) under its run's id, with
the run's steps; ``etl_runs`` mirrors the windows at each publish: a failed run that published
nothing is still on record. Importing this
package imports nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Progress = Callable[[dict[str, Any]], None]
"""What a step tells its caller while it works: ``page``, ``staged``, ``publish``, ``resume`` and
``run`` events (dicts; docs/operations.md lists their fields)."""
