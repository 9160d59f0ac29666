"""The guard itself: network use fails in the test process and in notebook kernels."""

import socket

import nbformat
import pytest
from nbclient import NotebookClient
from no_network import NetworkAccessError

from conftest import NETWORK_LOG


def test_connecting_outside_raises_and_is_logged():
    with pytest.raises(NetworkAccessError, match="example.org"):
        socket.create_connection(("example.org", 80), timeout=1)
    with pytest.raises(NetworkAccessError, match="93.184.216.34"):
        socket.socket().connect(("93.184.216.34", 80))
    assert "example.org" in NETWORK_LOG.read_text()
    NETWORK_LOG.write_text("")  # this test meant to try; do not fail it for that


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname(), timeout=1)
    client.close()
    server.close()


def test_notebook_kernels_are_guarded_too():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import socket\n"
        "try:\n    socket.create_connection(('example.org', 80), timeout=1)\n"
        "except Exception as err:\n    print(type(err).__name__)"
    ))
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert "NetworkAccessError" in nb.cells[0].outputs[0]["text"]
    assert "example.org" in NETWORK_LOG.read_text()
    NETWORK_LOG.write_text("")
