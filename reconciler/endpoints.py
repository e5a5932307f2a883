"""Where recon may send a request: the one outbound-endpoint policy.

Every URL recon sends a credential or reads data from (Genesys `apiUrl`/`loginUrl`, the AWS
`endpointUrl`, MarketDataFeed URLs and their token URL, TradeSense `wss://` endpoints, the
alert webhook, the Genesys notification socket) passes `check` twice: when the manifest or
`recon.yaml` is validated (so `recon validate` refuses it, naming file, line and field), and
in the client just before it connects (so a URL that reached a client some other way is
refused too). The rules:

- `https://` (`wss://` for websockets) only. Plain `http://` / `ws://` is allowed only to
  loopback (127.0.0.0/8, ::1, `localhost`): anything else would carry the credential, and
  the data recon stamps as evidence, in cleartext.
- No user name or password in the URL (credentials are secret references, never URL parts),
  no whitespace, control characters or backslashes anywhere (parsers disagree about them),
  a host in plain ASCII (non-ASCII hosts are refused: write the punycode form).
- An IP address is written as a canonical dotted quad or a bracketed IPv6 address. Other
  numeric forms (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`) are
  refused outright: resolvers read them as addresses, people do not.
- Never: cloud metadata services (169.254.169.254, 169.254.170.2, fd00:ec2::254,
  100.100.100.200, metadata.google.internal, ...), the unspecified address (0.0.0.0/8, ::),
  multicast, broadcast and reserved ranges, including every IPv6 form that embeds one
  (`::ffff:169.254.169.254`, `64:ff9b::a9fe:a9fe`, 6to4).
- Link-local addresses (169.254.0.0/16, fe80::/10) only with an explicit opt-in
  (`allowLinkLocal: true` next to the URL).
- Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are allowed: banks run
  their feeds, switches and S3-compatible stores there, and TLS still protects the credential.

`check` is pure (no I/O) and table-tested. `resolved_problem` is its counterpart for a host
name's DNS answers, used by `HostGuard` in the clients before their first connection to a host
(at most once a minute per host): a name that resolves to a metadata, unspecified or
(without the opt-in) link-local address is refused before anything is sent. A DNS answer
that changes between that check and the connection is not caught here; the TLS requirement
still stands in its way, since metadata services speak plain HTTP.

Called by: reconciler.manifest (URL field types, recon.yaml), the Genesys client and its
pooled sender, the feed adapters, the TradeSense client, the notification intake, alert
delivery, the CLI (--alert-webhook). Imports nothing of the package.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Family = Literal["http", "ws"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SECURE = {"http": "https", "ws": "wss"}
INSECURE = {"http": "http", "ws": "ws"}
LOOPBACK_NAMES = frozenset({"localhost"})
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
"""Host names of cloud instance metadata services (compared without a trailing dot)."""
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, OCI, OpenStack, DigitalOcean ...
        "169.254.169.253",  # AWS DNS
        "169.254.169.123",  # AWS time
        "169.254.170.2",  # ECS task metadata and credentials
        "169.254.170.23",  # EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud Classic
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS pod identity over IPv6
        "fd00:ec2::123",  # AWS time over IPv6
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class EndpointRefused(ValueError):
    """A URL recon will not send to. `message` says why without repeating the URL's path,
    query or user info (they may hold a secret); `hint` what to write instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message + (f"; {hint}" if hint else ""))
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL that passed `check`: its scheme, host (lower case, no brackets, no trailing
    dot), port (None: the scheme's default), the address when the host is an IP literal,
    and the address class: loopback, private, public, link-local or name (a host name)."""

    scheme: str
    host: str
    port: int | None
    address: IpAddress | None
    category: str

    @property
    def origin(self) -> str:
        """`scheme://host[:port]`: what messages may show of the URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")

    @property
    def loopback(self) -> bool:
        return self.category == "loopback"


def classify(address: IpAddress) -> str:
    """The class of an address: metadata, unspecified, multicast, reserved, loopback,
    link-local, private or public. IPv6 forms that embed an IPv4 address (mapped,
    compatible, NAT64, 6to4) are classed by the address they embed."""
    if address in METADATA_ADDRESSES:
        return "metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return classify(embedded)
        if address.is_unspecified:
            return "unspecified"
    elif address in _THIS_NETWORK:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if address.is_reserved:
        return "reserved"
    if address.is_private or address in _SHARED or not address.is_global:
        return "private"
    return "public"


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_REFUSED = {
    "metadata": "is a cloud metadata service; recon never sends a request there",
    "unspecified": "is the unspecified address (0.0.0.0 or ::), not a destination",
    "multicast": "is a multicast address, not a server",
    "reserved": "is a reserved or broadcast address, not a server",
}


def address_problem(category: str, *, allow_link_local: bool) -> str | None:
    """Why an address of `category` may not be reached (None: it may)."""
    if category in _REFUSED:
        return _REFUSED[category]
    if category == "link-local" and not allow_link_local:
        return "is a link-local address (169.254.0.0/16, fe80::/10); set allowLinkLocal: true if it is really meant"
    return None


def check(url: str, family: Family = "http", *, allow_link_local: bool = False, what: str = "the URL") -> Endpoint:
    """The Endpoint of `url` if recon may send to it (see the module docstring), else
    EndpointRefused. `family`: "http" (https, or http on loopback) or "ws" (wss, or ws on
    loopback). Pure: no DNS, no I/O."""
    if not isinstance(url, str) or not url:
        raise EndpointRefused(f"{what} is empty", f"write a {SECURE[family]}:// URL")
    if _FORBIDDEN_CHARACTERS.search(url):
        raise EndpointRefused(
            f"{what} contains whitespace, a control character or a backslash", "write the URL on one line, with / only"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        raise EndpointRefused(f"{what} is not a valid URL", f"write e.g. {SECURE[family]}://host/path") from None
    scheme = parts.scheme.lower()
    if scheme not in (SECURE[family], INSECURE[family]) or not url.lower().startswith(f"{scheme}://"):
        shown = f"{scheme}://" if scheme else "no scheme"
        raise EndpointRefused(
            f"{what} has {shown}; only {SECURE[family]}:// is allowed here", f"write {SECURE[family]}://host/..."
        )
    if "@" in parts.netloc:
        raise EndpointRefused(
            f"{what} carries a user name or password",
            "remove them from the URL; give credentials as env:NAME or file:PATH references",
        )
    host, address = _host(parts.netloc, what, SECURE[family])
    try:
        port = parts.port
    except ValueError:
        raise EndpointRefused(f"{what} has a port that is not a number from 1 to 65535") from None
    if port == 0:
        raise EndpointRefused(f"{what} has port 0, which is not a server's port")
    category = _category(host, address)
    endpoint = Endpoint(scheme, host, port, address, category)
    problem = address_problem(category, allow_link_local=allow_link_local)
    if problem is not None:
        raise EndpointRefused(f"{what} points at {endpoint.origin}, which {problem}")
    if scheme == INSECURE[family] and not endpoint.loopback:
        raise EndpointRefused(
            f"{what} is plain {scheme}:// to {endpoint.origin}, which would send credentials and data in cleartext",
            f"write {SECURE[family]}://; plain {scheme}:// is allowed only to loopback: 127.0.0.1, ::1, localhost",
        )
    return endpoint


def _host(netloc: str, what: str, secure: str) -> tuple[str, IpAddress | None]:
    """(normalised host, its address when it is an IP literal) of an authority without user info."""
    if netloc.startswith("["):
        inside, bracket, _ = netloc[1:].partition("]")
        if not bracket:
            raise EndpointRefused(f"{what} has an IPv6 address without its closing ']'")
        if "%" in inside:
            raise EndpointRefused(f"{what} has an IPv6 zone id; recon does not send to link-scoped addresses")
        try:
            return inside.lower(), ipaddress.IPv6Address(inside)
        except ValueError:
            raise EndpointRefused(f"{what} has '[...]' that is not an IPv6 address") from None
    host = netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
    if not host:
        raise EndpointRefused(f"{what} has no host", f"write {secure}://host/...")
    if not host.isascii():
        raise EndpointRefused(f"{what} has a host that is not plain ASCII", "write the host's punycode (xn--) form")
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not host or any(not _LABEL.fullmatch(label) for label in labels) or len(host) > 253:
        raise EndpointRefused(
            f"{what} has a host that is not a valid name or address", "write a DNS name (letters, digits, - and .)"
        )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            return host, ipaddress.IPv4Address(host)
        except ValueError:
            raise EndpointRefused(
                f"{what} has a numeric host that is not a dotted-quad IPv4 address",
                "write an IPv4 address as four decimal numbers without leading zeros (e.g. 192.0.2.10); "
                "integer, hex, octal and shortened forms are refused",
            ) from None
    return host, None


def _category(host: str, address: IpAddress | None) -> str:
    if address is not None:
        return classify(address)
    if host in LOOPBACK_NAMES:
        return "loopback"
    if host in METADATA_NAMES:
        return "metadata"
    return "name"


def resolved_problem(addresses: Iterable[str], *, allow_link_local: bool = False) -> str | None:
    """Why a host whose DNS answers are `addresses` may not be reached (None: it may).
    Pure: the caller resolves."""
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        problem = address_problem(classify(address), allow_link_local=allow_link_local)
        if problem is not None:
            return f"resolves to {address}, which {problem}"
    return None


class HostGuard:
    """The DNS half of the policy for one client: before the first request to a host (and
    again after `ttl_s`), resolve it and refuse (EndpointRefused) when it resolves to an
    address `resolved_problem` refuses. IP literals and loopback names are decided by
    `check` alone. A name that does not resolve is left to the connection to report."""

    def __init__(self, *, allow_link_local: bool = False, ttl_s: float = 60.0) -> None:
        self.allow_link_local = allow_link_local
        self.ttl_s = ttl_s
        self._checked: dict[tuple[str, int], float] = {}

    async def ensure(self, endpoint: Endpoint, what: str = "the URL") -> None:
        if endpoint.address is not None or endpoint.loopback:
            return
        port = endpoint.port or (443 if endpoint.scheme in ("https", "wss") else 80)
        key = (endpoint.host, port)
        now = time.monotonic()
        if self._checked.get(key, -1.0) > now:
            return
        try:
            answers = await asyncio.get_running_loop().getaddrinfo(endpoint.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        problem = resolved_problem((str(a[4][0]) for a in answers), allow_link_local=self.allow_link_local)
        if problem is not None:
            raise EndpointRefused(f"{what} names {endpoint.origin}, which {problem}")
        self._checked[key] = now + self.ttl_s


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url` (no user info, path or query), for messages; a URL
    that does not parse is shown as `<invalid url>`."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<invalid url>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
