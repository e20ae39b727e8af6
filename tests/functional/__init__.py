"""tests/functional: a package, so its conftest is not the top-level `conftest` module the older tests import."""
