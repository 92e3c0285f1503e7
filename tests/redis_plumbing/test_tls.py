"""TLS options against a real redis-server speaking TLS, with certificates made by ``openssl``:
a private CA (``tls_ca_file`` / ``ssl_ca_certs``), mutual TLS (``tls_cert_file`` /
``tls_key_file``), verification on by default, and ``ssl_cert_reqs=none`` in the URL."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from queuestore import BackendConfig, ConnectionFailedError, Job, TLSFailedError
from queuestore.backends.redis_lists import RedisListsFactory
from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.anyio


@dataclass
class TLSServer:
    server: RedisServer
    tls_port: int
    certs: Path

    def url(self, host: str = "localhost", query: str = "") -> str:
        return f"rediss://{host}:{self.tls_port}/0{query}"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=qs-ca", cwd=d
    )
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext", cwd=d,
        )  # fmt: skip


@pytest.fixture
def tls_server(tmp_path: Path, redis_server_factory: Any) -> TLSServer:
    """A redis-server with a TLS port that requires client certificates (its plain port too)."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command (apt-get install openssl)")
    _make_certs(tmp_path)
    port = free_port()
    args = ["--tls-port", str(port), "--tls-auth-clients", "yes"]
    for flag, name in (("--tls-cert-file", "server.pem"), ("--tls-key-file", "server.key")):
        args += [flag, str(tmp_path / name)]
    args += ["--tls-ca-cert-file", str(tmp_path / "ca.pem")]
    server = redis_server_factory(extra_args=args)
    return TLSServer(server, port, tmp_path)


async def _round_trip(config: BackendConfig) -> None:
    backend = await RedisListsFactory().create(config)
    try:
        await backend.enqueue(Job(id="tls-1", payload={"x": 1}))
        got = await backend.dequeue()
        assert got is not None
        assert got.id == "tls-1"
        await backend.ack(got)
        assert await backend.length() == 0
    finally:
        await backend.aclose()


def _config(url: str, **options: Any) -> BackendConfig:
    return BackendConfig(
        type="redis-lists", url=url, queue="tlsq", options={"conn_timeout": 2.0, "max_retries": 0, **options}
    )


async def test_mutual_tls_with_a_private_ca(tls_server: TLSServer) -> None:
    d = tls_server.certs
    await _round_trip(
        _config(
            tls_server.url(),
            tls_ca_file=str(d / "ca.pem"),
            tls_cert_file=str(d / "client.pem"),
            tls_key_file=str(d / "client.key"),
        )
    )


async def test_redis_py_names_work_the_same(tls_server: TLSServer) -> None:
    d = tls_server.certs
    await _round_trip(
        _config(
            f"{tls_server.url()}?ssl_ca_certs={d / 'ca.pem'}",
            ssl_certfile=str(d / "client.pem"),
            ssl_keyfile=str(d / "client.key"),
        )
    )


async def test_verification_is_on_by_default(tls_server: TLSServer) -> None:
    d = tls_server.certs
    client = {"tls_cert_file": str(d / "client.pem"), "tls_key_file": str(d / "client.key")}
    with pytest.raises(TLSFailedError, match="set tls_ca_file"):  # the private CA is not trusted
        await RedisListsFactory().create(_config(tls_server.url(), **client))
    with pytest.raises(TLSFailedError, match="certificate"):  # the certificate names localhost
        await RedisListsFactory().create(
            _config(tls_server.url("127.0.0.1"), tls_ca_file=str(d / "ca.pem"), **client)
        )
    # the chain verified, the host name not checked; then no verification at all
    await _round_trip(
        _config(
            tls_server.url("127.0.0.1", "?ssl_check_hostname=false"), tls_ca_file=str(d / "ca.pem"), **client
        )
    )
    await _round_trip(_config(tls_server.url("127.0.0.1", "?ssl_cert_reqs=none"), **client))


async def test_a_server_that_wants_a_client_certificate_refuses_none(tls_server: TLSServer) -> None:
    # TLS 1.3: the handshake completes and the server's "certificate required" alert arrives
    # with the first reply (a permanent TLS failure that says what to set); a server that closes
    # before its alert is read leaves only a broken connection.
    with pytest.raises((TLSFailedError, ConnectionFailedError)) as caught:
        await RedisListsFactory().create(
            _config(tls_server.url(), tls_ca_file=str(tls_server.certs / "ca.pem"))
        )
    if isinstance(caught.value, TLSFailedError):
        assert "requires a client certificate" in str(caught.value)
        assert "tls_cert_file" in str(caught.value)
