"""Webhook targets: refuse private, loopback and link-local addresses (SSRF), unless the operator allows them.

Checked when a subscription is made and again before every delivery and every redirect, on the addresses the
name resolves to then. The deliverer's connections resolve names through :class:`PinnedResolver`, which
applies the same rule to the addresses it connects to, so a resolver that answers differently between the
check and the connection cannot slip a private address through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    pass


def parse_networks(value: str) -> list[Network]:
    """``EXCHANGE_WEBHOOK_ALLOWED_NETWORKS``: CIDRs separated by commas."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]


def _forbidden(address: Address) -> bool:
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


def _check_address(address: Address, allowed: Sequence[Network]) -> None:
    if _forbidden(address) and not any(address in network for network in allowed):
        raise TargetRefused(
            f"resolves to {address}, a private, loopback or link-local address "
            "(allow it with EXCHANGE_WEBHOOK_ALLOWED_NETWORKS)"
        )


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    literal: Address | None  # the address itself, when the URL names one


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    """What the check needs of a URL, which depends on nothing else (so it is worked out once per URL)."""
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
        literal: Address | None = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    return _Target(parts.hostname, port, literal)


@lru_cache(maxsize=4096)
def _literal_refusal(address: Address, allowed: tuple[Network, ...]) -> str | None:
    try:
        _check_address(address, allowed)
    except TargetRefused as refused:
        return str(refused)
    return None


async def check(url: str, allowed: Sequence[Network]) -> None:
    """Raise :class:`TargetRefused` with a reason unless ``url`` may receive webhooks."""
    target = _target(url)
    if target.literal is not None:
        # An address written in the URL is the only one it resolves to: no resolver to ask (it runs in a
        # thread, before every post), and the same verdict every time.
        refusal = _literal_refusal(target.literal, tuple(allowed))
        if refusal is not None:
            raise TargetRefused(refusal)
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"host {target.host} does not resolve") from None
    for info in infos:
        _check_address(ipaddress.ip_address(info[4][0]), allowed)


class PinnedResolver(ThreadedResolver):
    """Resolves webhook hosts for the deliverer's connections and refuses (as a connection error) a name
    that resolves to an address :func:`check` would refuse."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        super().__init__()
        self.allowed = list(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        resolved = await super().resolve(host, port, family)
        for result in resolved:
            try:
                _check_address(ipaddress.ip_address(result["host"]), self.allowed)
            except TargetRefused as refused:
                raise OSError(f"refused target {host}: {refused}") from None
        return resolved
