"""HTTPS for the imitation: a throwaway CA and a server certificate, made at start.

The real site is HTTPS; serving the sandbox over TLS lets tests and benchmarks
exercise handshakes, CONNECT tunnels and custom CAs (``SSL_CERT_FILE``) the way
users meet them. trustme makes the CA and the certificate; it is imported only
when TLS is asked for, so the plain-HTTP sandbox needs nothing beyond aiohttp.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Names every sandbox certificate covers; ``tls_names`` adds more (say, a host
#: name that only a test proxy can resolve).
DEFAULT_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Tls:
    """A server context and the CA file a client must trust to verify it."""

    context: ssl.SSLContext
    ca_file: Path

    def remove(self) -> None:
        shutil.rmtree(self.ca_file.parent, ignore_errors=True)


def make_tls(extra_names: tuple[str, ...] = ()) -> Tls:
    try:
        import trustme
    except ImportError:  # pragma: no cover - a dependency of the sandbox's TLS only
        raise ValueError(
            "serving the sandbox over TLS needs the trustme package: pip install trustme"
        ) from None
    ca = trustme.CA(organization_name="chatgptfree-provider sandbox (testing only)")
    names = tuple(dict.fromkeys(DEFAULT_NAMES + tuple(extra_names)))
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    folder = Path(tempfile.mkdtemp(prefix="sandbox-tls-"))
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(context=context, ca_file=ca_file)
