"""The browser trusts what plain HTTP trusts: SSL_CERT_FILE's extra CAs go into a
throwaway NSS database (real certutil), never by ignoring certificate errors."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from scraper.browser import LAUNCH_ARGS
from scraper.browser._launch import _launch_options
from scraper.browser._trust import _extra_certificates, _trust_home
from scraper.errors import BrowserError


@pytest.fixture
def ca_pem(tmp_path: Path) -> Path:
    trustme = pytest.importorskip("trustme")
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _system_bundle() -> Path:
    found = Path(ssl.get_default_verify_paths().openssl_cafile)
    if not found.is_file():
        pytest.skip("no system CA bundle here")
    return found


def test_only_what_the_system_lacks_is_added(ca_pem: Path, tmp_path: Path) -> None:
    system = _system_bundle().read_text("ascii")
    first_system_cert = system[: system.index("-----END CERTIFICATE-----") + 25]
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(first_system_cert + "\n" + ca_pem.read_text())
    extra = _extra_certificates(str(bundle))
    assert len(extra) == 1 and "".join(extra[0].split()) == "".join(ca_pem.read_text().split())
    assert _extra_certificates(str(_system_bundle())) == []


async def test_the_nss_db_trusts_the_ca_in_ssl_cert_file(
    ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("certutil") is None:
        pytest.skip("certutil (libnss3-tools) is not installed: bash scripts/setup installs it")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    home, env = await _trust_home()
    assert home is not None and env is not None
    try:
        assert env["HOME"] == str(home)
        listed = subprocess.run(  # noqa: ASYNC221 - a quick local tool, in a test
            ["certutil", "-L", "-d", f"sql:{home / '.pki' / 'nssdb'}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "provider-ca-0" in listed and "C,," in listed
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def test_nothing_to_add_leaves_home_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert await _trust_home() == (None, None)


async def test_without_certutil_the_error_says_what_to_install(
    ca_pem: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    monkeypatch.setenv("PATH", str(tmp_path))  # no certutil on it
    with pytest.raises(BrowserError, match="libnss3-tools"):
        await _trust_home()


def test_the_browser_never_ignores_certificate_errors() -> None:
    args = _launch_options(None, None)["args"]
    assert set(LAUNCH_ARGS) <= set(args)  # plus the proxy choice (--no-proxy-server here)
    assert not any("ignore-certificate" in a for a in args)
