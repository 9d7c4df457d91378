"""A network guard: in the ci/cpu profiles a hub call must fail loudly and at once, never hang.

`install_network_guard()` patches `socket.socket.connect` (and `getaddrinfo`) so any connection to a
non-loopback address raises `NetworkBlockedError`. The course's test runner installs it in every notebook
kernel through `tools/guard/sitecustomize.py`; it also covers `torchrun` children, which only talk over
loopback.
"""

from __future__ import annotations

import ipaddress
import socket

_ORIGINAL = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "getaddrinfo": socket.getaddrinfo,
}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "", None}


class NetworkBlockedError(ConnectionError):
    """Raised when code tries to reach an address outside this machine while the guard is on."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in _LOCAL_NAMES or host == socket.gethostname():
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _check(address) -> None:
    if isinstance(address, tuple) and address and not _is_local(address[0]):
        raise NetworkBlockedError(
            f"network guard: outbound connection to {address[0]!r} blocked (offline profile)"
        )


def _connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address)
    return _ORIGINAL["connect"](self, address)


def _connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address)
    return _ORIGINAL["connect_ex"](self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        raise NetworkBlockedError(f"network guard: name lookup of {host!r} blocked (offline profile)")
    return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)


def install_network_guard() -> None:
    """Block every non-loopback connection and name lookup in this process."""
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.getaddrinfo = _getaddrinfo


def remove_network_guard() -> None:
    """Restore the original socket functions."""
    socket.socket.connect = _ORIGINAL["connect"]
    socket.socket.connect_ex = _ORIGINAL["connect_ex"]
    socket.getaddrinfo = _ORIGINAL["getaddrinfo"]


def guard_installed() -> bool:
    """Whether the guard is active in this process."""
    return socket.socket.connect is _connect
