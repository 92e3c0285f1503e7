"""Server URLs by redis-py's ``from_url`` rules, made strict: every query option is applied
or refused with a field-path error, never dropped; redis-py's option names are aliases."""

from __future__ import annotations

import pytest

import queuestore as qs
from queuestore._url import parse_server_url
from queuestore.backends._redis.connection import effective_options
from queuestore.backends.redis_lists import RedisListsOptions


def _full(text: str) -> qs.StorageConfig:
    config = qs.load_config(text, env={}).apply_defaults()
    config.validate()
    return config


def test_valkey_schemes_are_redis_and_rediss() -> None:
    assert parse_server_url("valkey://h:7000/2").scheme == "redis"
    tls = parse_server_url("valkeys://u:pw@h/1")
    assert (tls.scheme, tls.host, tls.port, tls.db, tls.password) == ("rediss", "h", 6379, 1, "pw")


def test_unix_socket_with_db_and_options() -> None:
    u = parse_server_url("unix:///run/redis%20x.sock?db=3&socket_timeout=2.5")
    assert (u.scheme, u.path, u.db) == ("unix", "/run/redis x.sock", 3)
    assert u.options == {"read_timeout": 2.5, "write_timeout": 2.5}


def test_query_options_are_typed_under_queuestore_names() -> None:
    p = parse_server_url(
        "rediss://h/0?socket_connect_timeout=3&health_check_interval=15s&max_connections=7"
        "&ssl_cert_reqs=none&ssl_check_hostname=false&ssl_ca_certs=/etc/ca.pem&pool_timeout=100ms"
    )
    assert p.options == {
        "conn_timeout": 3.0,
        "idle_timeout": 15.0,
        "max_connections": 7,
        "tls_verify": False,
        "tls_check_hostname": False,
        "tls_ca_file": "/etc/ca.pem",
        "pool_timeout": 0.1,
    }


def test_password_and_username_in_the_query() -> None:
    p = parse_server_url("redis://h?username=app&password=s%40cret")
    assert (p.username, p.password) == ("app", "s@cret")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://h:0", "1..65535, got 0"),
        ("redis://h?socket_keepalive=true", "'socket_keepalive' is not supported"),
        ("redis://h?bogus=1", "'bogus' is not supported"),
        ("redis://h?ssl=true", "rediss://"),
        ("redis://h?socket_timeout=soon", "invalid duration"),
        ("redis://h?max_connections=-1", "must be an int >= 0"),
        ("redis://h?ssl_check_hostname=maybe", "true or false"),
        ("rediss://h?ssl_cert_reqs=optional", "'none' or 'required'"),
        ("redis://h?db=1&db=2", "more than once"),
        ("redis://h/1?db=2", "path names database 1, ?db= names 2"),
        ("redis://h?socket_timeout=1&read_timeout=2", "conflicts"),
        ("redis://:topsecret@h?password=xyzzy", "given twice"),
        ("redis://h#frag", "fragment"),
        ("ftp://h", "scheme must be one of"),
    ],
)
def test_bad_urls_are_refused_naming_the_field(url: str, fragment: str) -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        parse_server_url(url)
    assert info.value.field == "url"
    assert fragment in str(info.value)
    assert "topsecret" not in str(info.value)
    assert "xyzzy" not in str(info.value)


def test_a_query_password_never_shows_in_errors() -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        parse_server_url("redis://h?password=topsecret&bogus=1")
    assert "topsecret" not in str(info.value)


def test_config_validation_refuses_an_ignored_option_with_its_path() -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        _full("backends: {a: {type: redis-lists, url: 'redis://h?socket_keepalive=1'}}")
    assert info.value.field == "backends.a.url"
    with pytest.raises(qs.ConfigurationError) as info:
        _full("backends: {a: {type: redis-lists, url: 'redis://h?ssl_ca_certs=/ca.pem'}}")
    assert (info.value.field, "TLS is off" in str(info.value)) == ("backends.a.url", True)


@pytest.mark.parametrize("backend_type", ["redis-lists", "redis-streams", "keydb", "dragonfly"])
def test_redis_py_names_are_aliases_that_defaults_do_not_contradict(backend_type: str) -> None:
    config = _full(
        f"""
defaults: {{read_timeout: 5s, timeout: 10s}}
backends:
  a:
    type: {backend_type}
    url: 'rediss://h'
    options: {{socket_timeout: 2, socket_connect_timeout: 3, ssl_cert_reqs: none,
               ssl_ca_certs: /ca.pem, ssl_certfile: /c.pem, ssl_keyfile: /k.pem,
               health_check_interval: 20s}}
"""
    )
    backend = config.get_backend_config("a")
    options = qs.default_registry().factory(backend_type).parse(backend)
    got = effective_options(backend, options)
    assert (got.read_timeout, got.write_timeout, got.conn_timeout, got.idle_timeout) == (2, 2, 3, 20)
    assert (got.tls_verify, got.tls_ca_file, got.tls_cert_file, got.tls_key_file) == (
        False,
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"socket_timeout": 2, "read_timeout": 3}, "options.socket_timeout"),
        ({"socket_connect_timeout": 2, "conn_timeout": 3}, "options.socket_connect_timeout"),
        ({"ssl_cert_reqs": "none", "tls_verify": True, "tls_ca_file": "/x"}, None),
        ({"ssl_ca_certs": "/a", "tls_ca_file": "/b"}, "options.ssl_ca_certs"),
        ({"ssl_cert_reqs": "optional"}, "options.ssl_cert_reqs"),
        ({"tls_verify": False, "tls_check_hostname": True}, "options.tls_check_hostname"),
    ],
)
def test_two_spellings_with_two_values_are_an_error(options: dict[str, object], field: str | None) -> None:
    config = qs.BackendConfig(type="redis-lists", url="rediss://h", queue="q", options=options)
    if field is None:  # the same value (tls_verify=True is its default): the alias decides
        opts = qs.default_registry().factory("redis-lists").parse(config)
        assert opts.tls_verify is False
        return
    with pytest.raises(qs.ConfigurationError) as info:
        qs.default_registry().factory("redis-lists").parse(config)
    assert info.value.field == field


def test_the_url_query_wins_over_options_as_in_redis_py() -> None:
    config = qs.BackendConfig(
        type="redis-lists", url="redis://h?socket_timeout=4", queue="q", options={"read_timeout": 1.5}
    )
    got = effective_options(config, RedisListsOptions(read_timeout=1.5))
    assert (got.read_timeout, got.write_timeout) == (4.0, 4.0)


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("redis://h?max_connections=0", {}, "url"),
        ("redis://h?socket_timeout=0", {}, "url"),
        ("redis://h", {"max_connections": 0}, "options.max_connections"),
        ("redis://h", {"socket_timeout": 0}, "options.read_timeout"),
    ],
)
def test_a_bad_value_is_reported_where_it_was_written(
    url: str, options: dict[str, object], field: str
) -> None:
    config = qs.BackendConfig(type="redis-lists", url=url, queue="q", options=options)
    with pytest.raises(qs.ConfigurationError) as info:
        qs.default_registry().factory("redis-lists").parse(config)
    assert info.value.field == field
