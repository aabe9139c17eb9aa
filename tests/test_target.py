"""Target URLs: credentials split at the last ``@`` and never shown — not by :func:`redact`, not in our errors,
not in the error texts of urllib, elasticsearch-py or opensearch-py (which are only ever given a clean URL)."""
from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refusing_server import RefusingServer

from rds_slowlog.search import build_client, refused_status
from rds_slowlog.target import Target, TargetError, TargetRefused, detect_target_type, parse_target, redact

SECRET = "SEC@RET"  # every shape below hides a part of this


# ------------------------------------------------------------------------------------------ redaction

@pytest.mark.parametrize("url,shown", [
    ("user:SECRET@127.0.0.1:9311", "***@127.0.0.1:9311"),                     # no scheme
    ("http://u:SEC@RET@host", "http://***@host"),                             # unencoded @ in the password
    ("http://SECRET@host:9200", "http://***@host:9200"),                      # user (or token) only
    ("http://u:SE:C:RET@host:9200", "http://***@host:9200"),                  # colons
    ("http://u:SE/CRET@host:9200/es", "http://***@host:9200/es"),             # slash (urlsplit: host "u")
    ("http://u:SE#CRET@host:9200", "http://***@host:9200"),                   # hash (urlsplit: a fragment)
    ("http://u:SE?CRET@host:9200", "http://***@host:9200"),                   # question mark (urlsplit: query)
    ("http://u:SE%40CR%2FET@host:9200", "http://***@host:9200"),              # percent-encoded
    ("http://u:S@E:C/R#E?T@[::1]:9200/p", "http://***@[::1]:9200/p"),        # all of it, IPv6 host
    ("https://elastic:SECRET@es.example.com/prefix/", "https://***@es.example.com/prefix/"),
    ("HTTP://u:SECRET@host", "HTTP://***@host"),
    ("u:a://SECRET@host", "***@host"),                                        # '://' inside the password
    ("http://host:9200/es", "http://host:9200/es"),                           # nothing to hide
    ("not a url at all", "not a url at all"),
])
def test_redact_hides_everything_before_the_last_at(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("url,user,password,target", [
    ("http://u:SEC@RET@127.0.0.1:9200", "u", "SEC@RET", "http://127.0.0.1:9200"),
    ("http://u@127.0.0.1:9200", "u", None, "http://127.0.0.1:9200"),
    ("http://u:a:b@h", "u", "a:b", "http://h:9200"),
    ("http://u:a/b#c?d@h:1/es/", "u", "a/b#c?d", "http://h:1/es"),
    ("http://u%40corp:p%40ss%2F%3A@h:9200", "u@corp", "p@ss/:", "http://h:9200"),
    ("https://u:pw9@[fe80::1%25eth0]/x?pretty#frag", "u", "pw9", "https://[fe80::1%25eth0]:443/x"),
    ("HTTPS://u:pw9@@[::1]:9243", "u", "pw9@", "https://[::1]:9243"),
    ("http://127.0.0.1:9200", None, None, "http://127.0.0.1:9200"),
])
def test_parse_target_splits_at_the_last_at(url: str, user: str | None, password: str | None,
                                            target: str) -> None:
    t = parse_target(url)
    assert (t.username, t.password, t.url()) == (user, password, target)
    for shown in (str(t), repr(t)):
        assert password is None or password not in shown
    assert str(t) == (target.replace("://", "://***@") if user is not None else target)


@pytest.mark.parametrize("url,why", [
    ("user:SECRET@127.0.0.1:9311", "has no scheme"),
    ("127.0.0.1:9200", "has no scheme"),
    ("ftp://u:SECRET@host", "is not http or https"),
    ("http://u:SECRET@", "has no host"),
    ("http://u:SECRET@::1:9200", "IPv6 address goes in brackets"),
    ("http://u:SECRET@[::zz]:9200", "is not an IPv6 address"),
    ("http://u:SECRET@host:92x0", "is not a number"),
    ("http://u:SECRET@host:99999", "is not a number"),
])
def test_unusable_targets_are_rejected_without_the_credentials(url: str, why: str) -> None:
    with pytest.raises(TargetError, match=why) as info:
        parse_target(url)
    assert "SECRET" not in str(info.value) and ("***@" in str(info.value) or "@" not in url)
    with pytest.raises(ValueError):  # build_client: same parser, same error (a ValueError for callers)
        build_client("elasticsearch", url)


_PW = st.text(st.sampled_from("abcXYZ019@:/#?!$&'()*+,;=[] -_.~"), min_size=1, max_size=24)


@given(user=st.text(st.sampled_from("abcxyz019-_."), min_size=1, max_size=8), password=_PW,
       host=st.sampled_from(["127.0.0.1", "es.example.com", "[::1]", "[2001:db8::7]", "localhost"]),
       port=st.integers(1, 65535), path=st.sampled_from(["", "/es", "/a/b"]),
       scheme=st.sampled_from(["http", "https"]))
def test_any_password_round_trips_and_is_never_shown(user: str, password: str, host: str, port: int, path: str,
                                                      scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}:{port}{path}"
    t = parse_target(url)
    assert (t.username, t.password, t.port, t.path) == (user, password, port, path)
    assert t.url() == f"{scheme}://{host}:{port}{path}"
    assert redact(url) == str(t) == f"{scheme}://***@{host}:{port}{path}"


# ------------------------------------------------------------------------------------------ what libraries say

@pytest.fixture()
def recorder() -> Iterator[RefusingServer]:
    r = RefusingServer(401)
    yield r
    r.close()


@pytest.fixture()
def closed_port() -> Iterator[int]:
    """A port bound by nobody listening on it: connecting is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_clients_get_the_password_split_at_the_last_at_and_never_show_it(engine: str, recorder: RefusingServer,
                                                                          closed_port: int) -> None:
    url = f"http://elastic:{SECRET}@127.0.0.1:{recorder.port}"
    client = build_client(engine, url, http_compress=False, timeout=5)
    with pytest.raises(Exception) as info:
        client.info()
    assert refused_status(info.value) == 401
    assert recorder.auth == [_basic("elastic", SECRET)]          # the whole password, as one header
    for text in (str(info.value), repr(info.value), repr(client)):
        assert "SEC" not in text and "RET" not in text
    # unreachable: the library's connection error names the host, never the credentials
    down = build_client(engine, f"http://elastic:{SECRET}@127.0.0.1:{closed_port}", http_compress=False, timeout=5)
    if engine == "elasticsearch":
        down = down.options(max_retries=0)
    with pytest.raises(Exception) as info:
        down.info()
    assert "127.0.0.1" in repr(info.value)
    for text in (str(info.value), repr(info.value)):
        assert "SEC" not in text and "RET" not in text


def test_detection_sends_the_whole_password_and_says_401(recorder: RefusingServer) -> None:
    url = f"http://elastic:{SECRET}@127.0.0.1:{recorder.port}"
    with pytest.raises(TargetRefused) as info:
        detect_target_type(url, username=None, password=None, api_key=None)
    assert recorder.auth == [_basic("elastic", SECRET)]
    assert info.value.status == 401
    assert str(info.value).startswith(f"authentication failed (401) for http://***@127.0.0.1:{recorder.port}")
    with pytest.raises(TargetRefused, match=r"^authentication failed \(401\)"):
        detect_target_type(f"http://127.0.0.1:{recorder.port}", username=None, password=None, api_key="a2V5")
    assert recorder.auth[-1] == "ApiKey a2V5"


def test_detection_of_an_unreachable_target_shows_no_credentials(closed_port: int) -> None:
    with pytest.raises(ConnectionError) as info:
        detect_target_type(f"http://u:{SECRET}@127.0.0.1:{closed_port}", username=None, password=None,
                           api_key=None)
    assert str(info.value).startswith(f"cannot reach http://***@127.0.0.1:{closed_port}: ")
    assert "SEC" not in str(info.value) and "RET" not in str(info.value)


def test_scheme_less_target_is_refused_before_any_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        with pytest.raises(TargetError, match="has no scheme") as info:
            detect_target_type(f"user:SECRET@127.0.0.1:{port}", username=None, password=None, api_key=None)
        assert str(info.value).startswith(f"target ***@127.0.0.1:{port} has no scheme")
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody tried
    finally:
        listener.close()


def test_target_is_a_value_object() -> None:
    t = Target("http", "::1", None)
    assert t.url() == "http://[::1]:9200" and str(t) == t.url() and t.default_port == 9200
    assert TargetRefused(403, "http://u:p@h:1").args[0] == "not authorised (403) for http://***@h:1"
