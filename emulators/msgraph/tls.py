"""A local CA and a server certificate for 127.0.0.1/localhost, so clients speak real HTTPS
to the emulator and trust it only through an explicit CA bundle (never disabled checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path  # PEM of the CA: what clients pass as verify= / SSL_CERT_FILE
    server_pem: Path  # server private key + certificate chain, for uvicorn's ssl_certfile


def generate(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="SMVue Graph emulator")
    cert = authority.issue_cert(*hosts)
    files = TlsFiles(directory / "emulator-ca.pem", directory / "emulator-server.pem")
    authority.cert_pem.write_to_path(str(files.ca_bundle))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.server_pem))
    files.server_pem.chmod(0o600)
    return files
