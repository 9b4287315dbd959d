"""Proxies from the environment, read as reqwest (updog's HTTP client) reads them.

``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name an ``http://`` proxy (a plain request goes to it with
the absolute URL, an https one through a CONNECT tunnel; credentials in the URL become a
``Proxy-Authorization`` header) and ``NO_PROXY`` lists the hosts that skip it.  updog exports the first
and the last from ``updog.toml``.  This module only decides which proxy a request takes and what it
tells the proxy: it opens no connection and never sends the proxy's credentials anywhere else.
"""

from __future__ import annotations

import base64
import ipaddress
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import getproxies_environment

from repo_tool.errors import ConfigError


class Proxies:
    """The proxy settings of the environment at the time this object is made."""

    def __init__(self) -> None:
        self._settings = getproxies_environment()

    def for_host(self, scheme: str, host: str) -> SplitResult | None:
        """The proxy for ``scheme`` requests to ``host``, if the environment names one and NO_PROXY does not
        skip it."""
        url = self._settings.get(scheme) or self._settings.get("all")
        if not url or _no_proxy(host, self._settings.get("no", "")):
            return None
        proxy = urlsplit(url if "://" in url else f"http://{url}")
        if proxy.scheme != "http" or not proxy.hostname:
            raise ConfigError(f"proxy {url!r}: expected http://HOST[:PORT]")
        return proxy


def proxy_headers(proxy: SplitResult) -> dict[str, str]:
    """What a request tells ``proxy``: its credentials, when its URL carries some."""
    if proxy.username is None:
        return {}
    secret = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(secret).decode()}


def _no_proxy(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY skips the proxy for ``host``, as reqwest reads it: ``*``, IP addresses and
    networks, and domains matching themselves and their subdomains (a leading dot is ignored)."""
    host = host.lower().rstrip(".")
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        if entry == "*":
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            domain = entry.strip(".")
            if domain and (host == domain or host.endswith("." + domain)):
                return True
            continue
        try:
            if ipaddress.ip_address(host) in network:
                return True
        except ValueError:
            pass
    return False
