"""Caller addresses behind proxies: which proxies are trusted, and who the client is.

A forwarded-for header is believed only from a trusted proxy (the gateway in front of a
service, a reverse proxy in front of a web page): anyone else could write any address in it
and escape a per-address limit or a throttle. Shared by identity's pages and the dossiers
service's public lookup (the gateway appends its caller's address to x-forwarded-for)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "address_problems", "parse_addresses", "peer_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_addresses(text: str) -> list[str]:
    """A comma-separated setting ("10.0.0.5, 10.1.0.0/24") as a list; "" = none."""
    return [p.strip() for p in text.split(",") if p.strip()]


def address_problems(field: str, text: str) -> list[tuple[str, str]]:
    """The settings problem of each entry that is not an IP address or CIDR network."""
    out = []
    for entry in parse_addresses(text):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            out.append(
                (
                    field,
                    f"{entry!r} is not an IP address or CIDR network (e.g. 10.0.0.5 or "
                    "10.0.0.0/24); list the proxies, comma-separated",
                )
            )
    return out


def peer_host(peer: str) -> str:
    """A gRPC peer without its port: "ipv4:10.0.0.5:51234" → "10.0.0.5", "ipv6:[::1]:5" → "::1";
    other kinds (unix sockets…) as they are."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


class TrustedProxies:
    """The proxies whose forwarded-for header is believed."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: Sequence[Network] = [ipaddress.ip_network(e, strict=False) for e in entries]

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy; then the
        rightmost forwarded-for address not itself a trusted proxy (each proxy appends the
        address it saw, so entries left of an untrusted one may be forged)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer
