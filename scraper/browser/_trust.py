"""The browser's trust store: what ``SSL_CERT_FILE`` adds, given to Chromium's NSS database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path

from scraper.errors import BrowserError, ConfigurationError

log = logging.getLogger(__name__)


async def _trust_home() -> tuple[Path | None, dict[str, str] | None]:
    """A throwaway HOME whose NSS database trusts what ``SSL_CERT_FILE`` adds to the system's.

    Chromium on Linux reads its trust from ``$HOME/.pki/nssdb``, not from
    OpenSSL's ``SSL_CERT_FILE`` that plain HTTP honours; without this the
    browser would refuse a site plain HTTP trusts (a corporate or test CA).
    Only certificates the system bundle lacks are added (the system's are
    trusted already). ``(None, None)`` when there is nothing to add.
    """
    cafile = os.environ.get("SSL_CERT_FILE", "").strip()
    if not cafile:
        return None, None
    extra = await asyncio.to_thread(_extra_certificates, cafile)
    if not extra:
        return None, None
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserError(
            f"SSL_CERT_FILE={cafile} holds certificates the browser must trust too, and "
            "certutil is missing to give them to Chromium: install it (Debian/Ubuntu: "
            "apt-get install libnss3-tools; bash scripts/setup does)"
        )
    return await asyncio.to_thread(_nss_home, certutil, extra)


def _pem_blocks(text: str) -> list[str]:
    import re

    return re.findall(
        r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----", text
    )


def _extra_certificates(cafile: str) -> list[str]:
    import ssl

    try:
        given = _pem_blocks(Path(cafile).read_text("ascii", errors="replace"))
    except OSError as exc:
        raise ConfigurationError(
            f"SSL_CERT_FILE={cafile} cannot be read ({type(exc).__name__}): fix or unset it"
        ) from None
    system = ssl.get_default_verify_paths().openssl_cafile
    known: set[str] = set()
    if system and os.path.abspath(system) != os.path.abspath(cafile):
        with contextlib.suppress(OSError):
            known = {"".join(b.split()) for b in _pem_blocks(Path(system).read_text("ascii"))}
    elif system:
        return []  # SSL_CERT_FILE is the system bundle itself
    return [b for b in given if "".join(b.split()) not in known]


def _nss_home(certutil: str, pems: list[str]) -> tuple[Path, dict[str, str]]:
    import subprocess
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="provider-browser-home-"))
    try:
        db = home / ".pki" / "nssdb"
        db.mkdir(parents=True, mode=0o700)
        nss = f"sql:{db}"

        def run(*args: str) -> None:
            subprocess.run([certutil, *args], check=True, capture_output=True, timeout=20)

        run("-N", "-d", nss, "--empty-password")
        for i, pem in enumerate(pems):
            pem_file = home / f"ca-{i}.pem"
            pem_file.write_text(pem + "\n", "ascii")
            # "C,,": a CA trusted to issue server certificates, nothing more.
            run("-A", "-d", nss, "-n", f"provider-ca-{i}", "-t", "C,,", "-a", "-i", str(pem_file))
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise BrowserError(
            f"could not give SSL_CERT_FILE's certificates to the browser ({type(exc).__name__}); "
            "check the file holds PEM certificates"
        ) from None
    log.debug("browser trusts %d certificate(s) from SSL_CERT_FILE", len(pems))
    return home, {**os.environ, "HOME": str(home)}
