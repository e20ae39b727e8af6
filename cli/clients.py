"""Cloud clients for a command: `shared.cloud.Clients` with their own HTTP pool, one per thread."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Mapping, Union

from cli.env import is_local

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.cloud import Clients
    from shared.config import Settings


def make_clients(settings: Settings, env: Mapping[str, str], pool: int = 0) -> Clients:
    """`shared.cloud.Clients` for this environment. With `pool`, the SDK clients get their own
    HTTP session of that size (the SDK otherwise shares one 10-connection pool process-wide,
    which thrashes under more threads)."""
    from shared.cloud import Clients

    clients = Clients(settings, env)
    if pool:
        own_sessions(clients, pool, local=is_local(env))
    return clients


def own_sessions(clients: Clients, pool: int, local: bool = False) -> None:
    import requests

    session = requests.Session()
    if local:
        # requests re-reads the proxy variables from os.environ on every request (~1 ms each
        # with a large environment); a loopback endpoint never goes through a proxy.
        session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    for sdk in {id(c): c for c in (clients.storage.client, clients.out_storage.client, clients.ci.client)}.values():
        if hasattr(sdk, "_session"):
            sdk._session = session
            sdk._use_built_in_pool = False


class ThreadClients:
    """One `Clients` per thread (SDK clients keep per-call state; sessions are not shared)."""

    def __init__(self, settings: Settings, env: Mapping[str, str], pool: int = 4) -> None:
        self.settings, self.env, self.pool = settings, dict(env), pool
        self._local = threading.local()

    def get(self) -> Clients:
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = make_clients(self.settings, self.env, self.pool)
        return clients


AnyClients = Union["Clients", ThreadClients]  # what a library function that takes either accepts
