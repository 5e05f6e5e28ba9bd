"""Running the app: bind the socket first (a port in use is a one-line error, not a log), warn when the address
lets other machines in, serve with uvicorn quietly, and end on Ctrl-C with one line."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from typing import Any

from zoo_core.plugin_api import UsageError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (every address it names is a loopback one)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; a one-line UsageError when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise UsageError(f"--host {host}: not an address of this machine ({e.strerror or e})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without, a kept-alive connection waits ~40 ms per answer for a delayed
    # ACK (headers and body are written separately), which a browser reusing its connection would feel.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == 98 or "in use" in str(e):
            raise UsageError(f"port {port} on {host} is in use; pick another with --port (0: any free one)") from None
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(host: str, port: int, settings: Any, open_browser: bool = False) -> None:
    """Serve the app until Ctrl-C (or SIGTERM)."""
    import uvicorn

    from zoo_serve.app import create_app

    sock = bind(host, port)
    if not is_loopback(host):
        print(f"zoo: warning: serving on {host}, so other machines that can reach it can browse your models, "
              "registry and runs and upload pictures; the default --host 127.0.0.1 is this machine only",
              file=sys.stderr)  # fmt: skip
    app = create_app(settings)  # loads the catalogue now, so the first page is as fast as the others
    url = url_of(sock)
    print(f"zoo serve: {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, [url]).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                            server_header=False)  # fmt: skip
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down on SIGINT and raises it again once done
        pass
    finally:
        sock.close()
    print("zoo serve: stopped", file=sys.stderr)
