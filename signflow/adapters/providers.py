"""Identity providers, registered as Python entry points.

A provider package declares, in its own ``pyproject.toml``::

    [project.entry-points."signflow.identity_providers"]
    myid = "mypackage.signflow_provider:build"

where ``build(settings, pki) -> ProviderBuild``.  signflow ships ``bankid``
and ``freja``; a third needs no edit of signflow.  Providers are built on
first use, so an unused one needs no configuration.

A factory that may run a development stand-in also takes ``orders``, a
keyword: where the stand-in keeps its orders
(:class:`~signflow.adapters.sim_store.OrderStores`).  The runtime gives the
database's, so that every process of a deployment sees the same orders;
it is passed only to factories that name it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from signflow.adapters.sim_store import OrderStores
from signflow.config import Settings
from signflow.core.ports import IdentityProvider
from signflow.errors import ConfigError
from signflow.pdf.pki import Pki

GROUP = "signflow.identity_providers"


@dataclass
class ProviderBuild:
    provider: IdentityProvider
    #: A development stand-in served in-process (its WSGI app and state), if any.
    simulator: object | None = None
    simulator_app: object | None = None
    #: Where to mount the stand-in's pages in the web app (e.g. ``/bankid-sim``).
    mount: str = ""


Factory = Callable[[Settings, Pki], ProviderBuild]


def registered() -> dict[str, Callable[[], Factory]]:
    """Installed providers: name → a loader returning the factory."""
    return {ep.name: ep.load for ep in entry_points(group=GROUP)}


class Providers(Mapping[str, IdentityProvider]):
    """Name → provider, built lazily from the entry points."""

    def __init__(self, settings: Settings, pki: Pki,
                 loaders: dict[str, Callable[[], Factory]] | None = None, *,
                 stand_in_orders: OrderStores | None = None) -> None:
        self.settings, self.pki = settings, pki
        #: Where development stand-ins keep their orders (None: each its own memory).
        self.stand_in_orders = stand_in_orders
        self._loaders = loaders if loaders is not None else registered()
        self._built: dict[str, ProviderBuild] = {}
        self._lock = threading.Lock()

    def build(self, name: str) -> ProviderBuild:
        with self._lock:
            if name not in self._built:
                if name not in self._loaders:
                    raise ConfigError(f"no identity provider {name!r} is installed "
                                      f"(known: {', '.join(sorted(self._loaders))})")
                factory = self._loaders[name]()
                self._built[name] = factory(self.settings, self.pki, **self._extras(factory))
            return self._built[name]

    def _extras(self, factory: Factory) -> dict[str, object]:
        """The keywords *factory* takes beyond ``(settings, pki)``."""
        if self.stand_in_orders is None or \
                "orders" not in inspect.signature(factory).parameters:
            return {}
        return {"orders": self.stand_in_orders}

    def __getitem__(self, name: str) -> IdentityProvider:
        return self.build(name).provider

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)
