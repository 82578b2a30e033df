"""Real web servers: nginx terminating TLS in front of PHP-FPM, as WordPress sites run.

Debian's ``nginx-light`` and ``php-fpm`` (``scripts/setup`` installs them). One pair
per test, in the test's own folder, on a free loopback port: nginx logs every
request with its connection's serial number and the request's count on that
connection (``$connection $connection_requests``), the counts the issue measured a
lost keep-alive by. Both are stopped by their PIDs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

#: How long nginx or PHP-FPM may take to start answering.
START_SECONDS = 10.0
SITE_SCRIPT = Path(__file__).with_name("site.php")
CAPTURES = Path(__file__).resolve().parent.parent / "captures"

_NGINX = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  log_format conns '$connection $connection_requests $request_method $uri $status';
  access_log {dir}/access.log conns;
  client_body_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.pem;
    location / {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {script};
      fastcgi_pass unix:{dir}/fpm.sock;
      fastcgi_buffering off;
    }}
  }}
}}
"""

_FPM = """
[global]
pid = {dir}/fpm.pid
error_log = {dir}/fpm.log
daemonize = no
[www]
listen = {dir}/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 4
clear_env = no
"""


@dataclass(frozen=True)
class Request:
    """One line of nginx's log."""

    connection: int
    nth: int  # the request's count on its connection: 1 is a new connection
    method: str
    path: str
    status: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
        )
        if found:
            return found
    raise RuntimeError(f"{names[0]} is not installed: run bash scripts/setup")


def _fpm_binary() -> str:
    versions = sorted(Path("/usr/sbin").glob("php-fpm*"), reverse=True)
    return _binary("php-fpm", *(p.name for p in versions))


class Servers:
    """nginx + PHP-FPM serving ``site.php`` for one generation."""

    def __init__(self, folder: Path, generation: str, late_ms: int) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = folder / "ca.pem"
        self._generation = generation
        self._late_ms = late_ms
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        folder = self.folder
        (folder / "tmp").mkdir()
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(folder / "server.pem")
        )
        ca.cert_pem.write_to_path(str(self.ca_file))
        # As root nginx's workers would run as nobody, who cannot reach the PHP-FPM
        # socket in the test's private folder: they run as the test's user.
        user = "user root;" if os.geteuid() == 0 else ""
        names = {"dir": folder, "port": self.port, "script": SITE_SCRIPT, "user": user}
        (folder / "fpm.conf").write_text(_FPM.format(**names))
        (folder / "nginx.conf").write_text(_NGINX.format(**names))
        page = CAPTURES / f"{self._generation}-widget.html"
        env = {**os.environ, "GENERATION": self._generation, "LATE_MS": str(self._late_ms)}
        env["PAGE"] = str(page)
        env["CACHE_DIR"] = str(folder / "tmp")
        try:
            self._spawn([_fpm_binary(), "-R", "-F", "-y", str(folder / "fpm.conf")], env)
            self._await(lambda: (folder / "fpm.sock").exists(), "php-fpm")
            self._spawn([_binary("nginx"), "-c", str(folder / "nginx.conf")], env)
            self._await(self._accepts, "nginx")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{Path(argv[0]).name}.out").open("wb")
        with log:
            self._processes.append(
                subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            )

    def _await(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not ready():
            process = self._processes[-1]
            if process.poll() is not None:
                out = (self.folder / f"{Path(str(process.args[0])).name}.out").read_text()
                raise RuntimeError(f"{what} exited with {process.returncode}: {out[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start within {START_SECONDS} s")
            time.sleep(0.02)

    def _accepts(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def requests(self) -> list[Request]:
        """Every request nginx has logged so far (it logs one once its body has ended)."""
        log = self.folder / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        out = []
        for line in lines:
            connection, nth, method, path, status = line.split()
            out.append(Request(int(connection), int(nth), method, path, int(status)))
        return out

    async def logged(self, count: int, seconds: float = 10.0) -> list[Request]:
        """The log once it holds ``count`` requests (polled: nginx's log has no event)."""
        import asyncio

        async with asyncio.timeout(seconds):
            while len(requests := self.requests()) < count:
                await asyncio.sleep(0.01)
        return requests

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # nginx and PHP-FPM: a fast shutdown
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self._processes.clear()


@contextlib.contextmanager
def nginx_fpm(folder: Path, generation: str, *, late_ms: int = 0) -> Iterator[Servers]:
    servers = Servers(folder, generation, late_ms)
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()
