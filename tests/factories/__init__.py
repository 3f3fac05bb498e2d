"""Builders shared by the test modules: import them from here, never from another test module
(``tests/test_suite.py`` checks that no test module imports another).

- :mod:`tests.factories.served` — what the API serves: Taobao order records and the page bytes
  around them (``order``, ``sub``, ``page``, ``envelope``).
- :mod:`tests.factories.landed` — landed windows on disk (``land``, ``T0``) and what a published
  warehouse holds (``facts``).
- :mod:`tests.factories.warehouse` — warehouses without the pipeline: in memory with hand-placed
  rows and the planted check violations (``memory_warehouse``, ``order``, ``line``, ``PLANTED``…),
  on disk from the sandbox's ground truth (``truth_warehouse``), or as an older version published it.
- :mod:`tests.factories.sandbox` — served worlds (``serve``) and a signed caller of the sandbox
  (``Api``, ``signed_headers``) for the sandbox's own tests.
- :mod:`tests.factories.callbacks` — signed callback messages and a receiver over real HTTP.
- :mod:`tests.factories.corpus` — the bad-input corpus (``tests/corpus/*.json``) as page bytes.
- :mod:`tests.factories.strategies` — hypothesis strategies: arbitrary JSON, valid and garbage
  records of every endpoint.

Fixtures (a served world per module, in-memory warehouses, clients that retry without waiting)
are in ``tests/conftest.py``; shared assertions (a warehouse equal to the sandbox's truth) in
``tests/helpers.py``.
"""
