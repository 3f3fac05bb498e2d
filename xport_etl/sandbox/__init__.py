"""A faithful local Xportcn server with a deterministic world of orders (see CONTRACT.md).

The constants below are the sandbox's defaults; they are also what the pipeline uses when no
credentials are configured and the base URL points at the sandbox. They are not secrets.

Modules: ``world`` (the deterministic world and its clock), ``server`` (``create_app``, the
FastAPI app), ``truth`` (the WAREHOUSE.md tables the pipeline must produce), ``testing``
(``SandboxServer``, the app on a free loopback port) and ``cli`` (the ``sandbox`` command).
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_BASE_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_ACCESS_KEY = "5a1c0ffee0ddba11deadbeefcafe0001"
DEFAULT_ACCESS_SECRET = "sandbox-secret-not-for-production"
DEFAULT_USER_ID = "1000001"
