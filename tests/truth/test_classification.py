"""Errors say what happened: refused credentials, ACL refusals and TLS failures are permanent,
each with its own code; an unreachable server stays retryable. Real servers throughout."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import queuestore as qs
from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.anyio

REDIS_TYPES = ["redis-lists", "redis-streams"]
APP_PW = "app-Pw-9x"


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """A server whose default user needs a password, plus a read-only user and an app user."""
    with RedisServer() as server:
        client = server.sync_client()
        client.execute_command("ACL", "SETUSER", "app", "on", f">{APP_PW}", "~*", "&*", "+@all")
        client.execute_command("ACL", "SETUSER", "ro", "on", ">ro-Pw-9x", "~*", "&*", "+@all", "-@write")
        client.execute_command("ACL", "SETUSER", "default", "on", ">default-Pw-9x", "~*", "&*", "+@all")
        yield server


async def outcome(type_: str, url: str, **options: object) -> BaseException | None:
    """Create a backend, enqueue one job, close; the error raised, or None."""
    config = qs.BackendConfig(type=type_, name="t", queue="truth-q", url=url, options=dict(options))
    try:
        backend = await qs.default_registry().create(type_, config)
        async with backend:
            await backend.enqueue(qs.Job(payload={"n": 1}))
    except qs.QueueStoreError as exc:
        return exc
    return None


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_the_right_credentials_work(acl_server: RedisServer, type_: str) -> None:
    assert await outcome(type_, f"redis://app:{APP_PW}@{acl_server.address}/0") is None


@pytest.mark.parametrize("type_", REDIS_TYPES)
@pytest.mark.parametrize(
    "userinfo",
    ["app:wrong-Pw-1", ":wrong-Pw-2", "nobody:wrong-Pw-3", ""],
    ids=["wrong-password", "wrong-default-password", "unknown-user", "no-password"],
)
async def test_refused_credentials_are_permanent(acl_server: RedisServer, type_: str, userinfo: str) -> None:
    at = f"{userinfo}@" if userinfo else ""
    err = await outcome(type_, f"redis://{at}{acl_server.address}/0")
    assert isinstance(err, qs.AuthenticationFailedError), repr(err)
    assert qs.error_code(err) == "AUTHENTICATION_FAILED"
    assert qs.is_permanent(err)
    assert not qs.is_retryable(err)
    assert "wrong-Pw" not in str(err)


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_no_password_message_is_whole(acl_server: RedisServer, type_: str) -> None:
    err = await outcome(type_, f"redis://{acl_server.address}/0")
    assert isinstance(err, qs.AuthenticationFailedError)
    # the server's sentence reaches the caller whole (its <user> <pass> placeholders are no secret)
    assert "HELLO AUTH <user> <pass> option" in str(err), str(err)
    assert "***" not in str(err)


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_acl_refusal_is_permanent(acl_server: RedisServer, type_: str) -> None:
    err = await outcome(type_, f"redis://ro:ro-Pw-9x@{acl_server.address}/0")
    assert isinstance(err, qs.PermissionDeniedError), repr(err)
    assert qs.error_code(err) == "PERMISSION_DENIED"
    assert qs.is_permanent(err)
    assert not qs.is_retryable(err)
    assert "ro-Pw-9x" not in str(err)


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_an_unreachable_server_stays_retryable(type_: str) -> None:
    err = await outcome(type_, f"redis://127.0.0.1:{free_port()}/0", conn_timeout=1.0, max_retries=0)
    assert isinstance(err, qs.ConnectionFailedError), repr(err)
    assert qs.is_retryable(err)
    assert not qs.is_permanent(err)


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_a_missing_ca_file_is_permanent(acl_server: RedisServer, type_: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    err = await outcome(type_, f"rediss://app:{APP_PW}@{acl_server.address}/0", tls_ca_file=str(missing))
    assert isinstance(err, qs.TLSFailedError), repr(err)
    assert qs.error_code(err) == "TLS_FAILED"
    assert qs.is_permanent(err)
    assert "tls_ca_file" in str(err)


# -- a real TLS server ---------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(root: Path) -> None:
    """A CA, a server certificate it signs for the host ``elsewhere.example`` only, and another CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=truth-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=root)  # fmt: skip
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other-ca",
             "-keyout", "other.key", "-out", "other.pem", cwd=root)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=elsewhere.example",
             "-keyout", "server.key", "-out", "server.csr", cwd=root)  # fmt: skip
    (root / "san.ext").write_text("subjectAltName=DNS:elsewhere.example\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=root)  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, int, Path]]:
    """A server with a TLS port whose certificate names another host: (server, tls port, cert dir)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl binary is needed to make test certificates")
    root = tmp_path_factory.mktemp("tls")
    _make_certs(root)
    port = free_port()
    args = ["--tls-port", str(port), "--tls-cert-file", str(root / "server.pem"),
            "--tls-key-file", str(root / "server.key"), "--tls-ca-cert-file", str(root / "ca.pem"),
            "--tls-auth-clients", "no"]  # fmt: skip
    with RedisServer(extra_args=args) as server:
        yield server, port, root


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_tls_works_when_verification_is_off(
    tls_server: tuple[RedisServer, int, Path], type_: str
) -> None:
    _, port, _ = tls_server
    assert await outcome(type_, f"rediss://127.0.0.1:{port}/0", tls_verify=False) is None


@pytest.mark.parametrize("type_", REDIS_TYPES)
@pytest.mark.parametrize("ca", ["ca.pem", "other.pem"], ids=["host-name-mismatch", "unknown-ca"])
async def test_a_certificate_that_does_not_verify_is_permanent(
    tls_server: tuple[RedisServer, int, Path], type_: str, ca: str
) -> None:
    _, port, root = tls_server
    err = await outcome(type_, f"rediss://127.0.0.1:{port}/0", tls_ca_file=str(root / ca))
    assert isinstance(err, qs.TLSFailedError), repr(err)
    assert qs.error_code(err) == "TLS_FAILED"
    assert qs.is_permanent(err)
    assert not qs.is_retryable(err)
    assert "certificate" in str(err).lower()


@pytest.mark.parametrize("type_", REDIS_TYPES)
async def test_a_peer_answering_tls_with_plain_text_is_permanent(type_: str) -> None:
    """A listener that answers any handshake with a plain-text error line, as a proxy would."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"-ERR this port does not serve TLS\r\n" * 8)
        await writer.drain()
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        err = await outcome(type_, f"rediss://127.0.0.1:{port}/0", conn_timeout=5.0, max_retries=0)
    assert isinstance(err, qs.TLSFailedError), repr(err)
    assert qs.is_permanent(err)
