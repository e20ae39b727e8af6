"""tests/unit: pure functions and objects; no socket, no subprocess (see tests/isolation.py)."""
from isolation import no_io  # noqa: F401 - an autouse fixture for this folder
