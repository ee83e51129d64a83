"""Webhook targets: refuse private, loopback and link-local addresses (SSRF), unless the operator allows them.

Checked when a subscription is made and again before every delivery and every redirect, on the addresses the
name resolves to then. (The connection resolves the name once more; a resolver that answers differently
within that instant could still slip through. Pinning the address would need TLS without hostname checks.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(ValueError):
    pass


def parse_networks(value: str) -> list[Network]:
    """``EXCHANGE_WEBHOOK_ALLOWED_NETWORKS``: CIDRs separated by commas."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def check(url: str, allowed: Sequence[Network]) -> None:
    """Raise :class:`TargetRefused` with a reason unless ``url`` may receive webhooks."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise TargetRefused("must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused("must name a host")
    if parts.username or parts.password:
        raise TargetRefused("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("has an invalid port") from None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"host {parts.hostname} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _forbidden(address) and not any(address in network for network in allowed):
            raise TargetRefused(
                f"resolves to {address}, a private, loopback or link-local address "
                "(allow it with EXCHANGE_WEBHOOK_ALLOWED_NETWORKS)"
            )
