"""tests/e2e: the real SDKs against the HTTP local cloud, the CLI as a subprocess, real media and packages."""
