"""RedisConfig and redis_config(): URL parsing, round trips, equality, redaction, checks."""

from __future__ import annotations

import dataclasses

import pytest

from rush import RedisConfig, redis_config

SECRET = "s3cr:et/p@ss%w?rd#"


@pytest.mark.parametrize("url, fields", [
    ("redis://example.org:6380/2",
     dict(host="example.org", port=6380, db=2, ssl=False, password=None, username=None)),
    ("rediss://example.org:6390/1", dict(host="example.org", port=6390, db=1, ssl=True)),
    ("redis://example.org", dict(host="example.org", port=6379, db=0)),
    ("redis://:pw@h:6379/0", dict(host="h", password="pw", username=None)),
    ("redis://alice@h/3", dict(username="alice", password=None, db=3)),
    ("redis://alice:pw@h:1234/5", dict(username="alice", password="pw", port=1234, db=5)),
    ("redis://h:1234/?db=7", dict(host="h", port=1234, db=7)),
    ("redis://h:1234/2?db=7", dict(db=7)),  # the query wins over the path
    ("redis://[::1]:6381/0", dict(host="::1", port=6381)),
    ("unix:///tmp/redis.sock", dict(unix_socket_path="/tmp/redis.sock", db=0, ssl=False)),
    ("unix:///tmp/redis.sock?db=4", dict(unix_socket_path="/tmp/redis.sock", db=4)),
    ("unix://:pw@/var/run/r.sock?db=1", dict(unix_socket_path="/var/run/r.sock", password="pw", db=1)),
])
def test_url_is_parsed_into_fields(url, fields):
    config = RedisConfig(url=url)
    for name, value in fields.items():
        assert getattr(config, name) == value, name
    assert RedisConfig.from_url(url) == config


def test_escaped_credentials_are_unescaped_and_round_trip():
    url = "redis://b%40b%3Ax:s3cr%3Aet%2Fp%40ss%25w%3Frd%23@h:6379/0"
    config = RedisConfig(url=url)
    assert config.username == "b@b:x"
    assert config.password == SECRET
    assert RedisConfig(url=config.url) == config


@pytest.mark.parametrize("config", [
    RedisConfig(),
    RedisConfig(host="example.org", port=1, db=15),
    RedisConfig(host="h", password=SECRET),
    RedisConfig(host="h", username="user name", password=SECRET),
    RedisConfig(host="h", username="only-user"),
    RedisConfig(host="h", ssl=True, password="pw"),
    RedisConfig(host="::1", port=7000),
    RedisConfig(unix_socket_path="/tmp/dir with space/r.sock", db=3, password=SECRET),
])
def test_url_round_trip(config):
    assert RedisConfig(url=config.url) == config
    assert RedisConfig(url=RedisConfig(url=config.url).url).url == config.url


def test_equality_is_field_by_field():
    assert RedisConfig(url="redis://h:1234/2") == RedisConfig(host="h", port=1234, db=2)
    assert RedisConfig(url="rediss://:pw@h:1234/2") == RedisConfig(host="h", port=1234, db=2,
                                                                  password="pw", ssl=True)
    assert RedisConfig(url="redis://127.0.0.1:6379/0") == RedisConfig()
    assert RedisConfig(url="redis://h:1234/2") != RedisConfig(host="h", port=1234, db=3)
    assert RedisConfig(password="a") != RedisConfig(password="b")
    assert RedisConfig(retry_seconds=1) != RedisConfig(retry_seconds=2)
    assert hash(RedisConfig(url="redis://h:1/0")) == hash(RedisConfig(host="h", port=1))


def test_config_is_immutable():
    config = RedisConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("config", [
    RedisConfig(host="h", password=SECRET),
    RedisConfig(url="redis://user:" + "s3cr%3Aet%2Fp%40ss%25w%3Frd%23" + "@h:1/0"),
    RedisConfig(unix_socket_path="/tmp/r.sock", password=SECRET),
])
def test_repr_and_str_never_contain_the_password(config):
    assert config.password == SECRET
    for text in (repr(config), str(config), config.redacted_url, f"{config}", f"{[config]}"):
        assert SECRET not in text
        assert "s3cr" not in text
        assert "***" in text
    assert SECRET not in config.location
    # the full URL does carry it (escaped) so it can be handed to a worker
    assert RedisConfig(url=config.url).password == SECRET


def test_repr_shows_where(monkeypatch):
    config = RedisConfig(host="example.org", port=1234, db=2)
    assert "example.org:1234/2" in repr(config)
    assert config.location == "example.org:1234"
    assert RedisConfig(unix_socket_path="/tmp/r.sock").location == "/tmp/r.sock"


def test_connection_kwargs():
    kw = RedisConfig(host="h", port=1, db=2, password="pw", username="u", ssl=True).connection_kwargs()
    assert kw == dict(host="h", port=1, db=2, password="pw", username="u", ssl=True)
    kw = RedisConfig(unix_socket_path="/tmp/r.sock", db=1).connection_kwargs()
    assert kw["unix_socket_path"] == "/tmp/r.sock" and "host" not in kw and kw["db"] == 1


def test_redis_config_reads_env_in_order(monkeypatch):
    monkeypatch.delenv("RUSH_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert redis_config() == RedisConfig()
    monkeypatch.setenv("REDIS_URL", "redis://from-redis-url:1111/1")
    assert redis_config() == RedisConfig(host="from-redis-url", port=1111, db=1)
    monkeypatch.setenv("RUSH_REDIS_URL", "redis://from-rush:2222/2")
    assert redis_config() == RedisConfig(host="from-rush", port=2222, db=2)
    monkeypatch.setenv("RUSH_REDIS_URL", "")  # empty counts as unset
    assert redis_config().host == "from-redis-url"


def test_redis_config_with_arguments_ignores_env(monkeypatch):
    monkeypatch.setenv("RUSH_REDIS_URL", "redis://from-rush:2222/2")
    assert redis_config(host="h", port=1) == RedisConfig(host="h", port=1)
    assert redis_config(url="redis://x:3/0") == RedisConfig(host="x", port=3)


@pytest.mark.parametrize("kw", [
    dict(host=1), dict(port="6379"), dict(port=6379.0), dict(port=True), dict(db="0"),
    dict(db=None), dict(password=123), dict(username=b"u"), dict(ssl="yes"), dict(ssl=1),
    dict(unix_socket_path=5), dict(retry_seconds="30"), dict(retry_seconds=True), dict(url=5),
    dict(url=b"redis://h"),
])
def test_bad_types_raise_type_error(kw):
    name = next(iter(kw))
    with pytest.raises(TypeError, match=name):
        RedisConfig(**kw)


@pytest.mark.parametrize("kw", [
    dict(port=0), dict(port=65536), dict(port=-1), dict(db=-1), dict(retry_seconds=-1),
    dict(url="http://h:1/0"), dict(url="h:6379"), dict(url="redis://h:notaport/0"),
    dict(url="redis://h:99999/0"), dict(url="redis://h:1/abc"), dict(url="redis://h:1/?db=x"),
    dict(url="redis://h:1/-1"),
])
def test_bad_values_raise_value_error(kw):
    with pytest.raises(ValueError):
        RedisConfig(**kw)
