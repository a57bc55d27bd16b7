"""Host and URL helpers: loopback hosts, a workspace's URL, where the token may go.

Standard library only (the Public Suffix List is imported on a redirect, the
one time it is needed).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import ContextError


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def workspace_url(dev_domain: str) -> str:
    """``https://<devDomain>``; http for a loopback dev domain (local tests only)."""
    host = urlsplit(f"//{dev_domain}").hostname or ""
    return f"{'http' if is_loopback(host) else 'https'}://{dev_domain}"


def token_scope(api_host: str) -> tuple[str, str]:
    """(host, domain): the token may go to ``host`` and to hosts under ``domain``
    ("" for none). ``domain`` is the API host's registrable domain by the
    Public Suffix List (ICANN and private sections), so ``de-fra-1.codesphere.com``
    is in scope of ``codesphere.com``, while ``x.azurewebsites.net`` scopes only
    itself and an IP address or a single-label host only itself."""
    host = api_host.lower().rstrip(".")
    if is_ip_address(host) or "." not in host:
        return host, ""
    from publicsuffixlist import PublicSuffixList  # noqa: PLC0415 (68 ms; only on a redirect)

    return host, PublicSuffixList().privatesuffix(host) or ""


LOOPBACK_TARGET = re.compile(r"(127(?:\.\d{1,3}){3}|localhost):\d{1,5}")


def parse_resolve(value: str) -> tuple[tuple[str, str], ...]:
    """CODESPHERE_RELEASE_RESOLVE, a test seam: ``domain=127.0.0.1:port,...``. It
    maps the custom domain's health check (never a request with the token) to a
    loopback address; nothing but ``127.x.y.z:port`` or ``localhost:port`` passes."""
    pairs = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        host, _, target = part.partition("=")
        if not host or not LOOPBACK_TARGET.fullmatch(target):
            raise ContextError(
                f"CODESPHERE_RELEASE_RESOLVE has '{part}': expected host=127.0.0.1:<port>; it is "
                "a seam for the tests and only ever points at loopback"
            )
        pairs.append((host.lower(), target))
    return tuple(pairs)
