"""A guard that makes any attempt to reach the network fail, in the test process and in kernels.

``install()`` patches ``socket`` so that connecting to, or resolving, anything but the local
machine raises ``NetworkAccessError`` and appends a line to the file named by the environment
variable ``MMCOURSE_NETWORK_LOG``. The conftest reads that file after every test, so an attempt
fails the test even when the code under test catches the exception. Jupyter kernels started by
the tests load this file through an IPython startup script (see ``conftest.py``).
"""

from __future__ import annotations

import os
import socket

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


class NetworkAccessError(RuntimeError):
    """Code under test tried to use the network."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    return host in _LOCAL_NAMES or str(host).startswith("127.")


def _refuse(what: str):
    log = os.environ.get("MMCOURSE_NETWORK_LOG")
    if log:
        with open(log, "a") as f:
            f.write(what + "\n")
    raise NetworkAccessError(f"tests must not use the network: {what}")


def install() -> None:
    """Patch ``socket`` in this process (idempotent)."""
    if getattr(socket, "_mmcourse_guarded", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect to {address}")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect_ex to {address}")
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse(f"name lookup of {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    socket._mmcourse_guarded = True
