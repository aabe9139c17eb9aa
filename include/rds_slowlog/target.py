"""The Elasticsearch/OpenSearch target: its URL parsed, redacted for messages, and its kind asked of the server.

A target is ``http(s)://[user[:password]@]host[:port][/path]``, like ``ES_URL``. Passwords are pasted into such
URLs unencoded more often than not, so the rules are chosen so that a password never ends up anywhere else:

* the userinfo ends at the **last** ``@`` after the scheme, whatever comes before it (``@ : / # ?`` included;
  an ``@`` that belongs to a path must be written ``%40``); the user name ends at the first ``:`` of the
  userinfo, the rest is the password; percent-escapes in both are decoded;
* :func:`redact` replaces everything before that last ``@`` by ``***`` (user name too: some people put a
  token there), for any string, with or without a scheme, parseable or not;
* :func:`parse_target` rejects what is not ``http``/``https`` with a host (a URL without a scheme, in
  particular) with a :class:`TargetError` whose message shows only the redacted URL, before any request;
* the URL handed to a client or to ``urllib`` never carries the credentials (they go in an
  ``Authorization`` header), so the libraries' own error texts cannot show them.

What ``rds-slowlog index`` makes of a target that cannot be used: a malformed or unreachable target is a usage
error (exit 2, ``EXIT_USAGE``); a target that answers 401 or 403 — when asked its kind, when templates are
installed or on a bulk request — says so as ``authentication failed (401) for <redacted url>`` /
``not authorised (403) for <redacted url>`` and exits 4 (``EXIT_INDEX``: the server refused the work).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

__all__ = ["Target", "TargetError", "TargetRefused", "detect_target_type", "parse_target", "redact", "refusal"]

SCHEMES: Final = ("http", "https")
#: ``scheme://`` at the very start (RFC 3986 scheme characters).
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
#: what follows the userinfo: host (bracketed IPv6 or a name/IPv4 without ``:``), optional port, path etc.
_HOST_PORT: Final = re.compile(r"(\[[^\]]*\]|[^:/?#\[\]@]*)(?::([^/?#]*))?([/?#].*)?", re.S)
_REG_NAME: Final = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=-]+")
_REFUSAL: Final = {401: "authentication failed (401)", 403: "not authorised (403)"}
FORMAT_HINT: Final = "write it as http(s)://[user:password@]host:port"


class TargetError(ValueError):
    """A target URL that cannot be used; the message carries only the redacted URL."""


class TargetRefused(RuntimeError):
    """The target answered 401 (credentials wrong or missing) or 403 (credentials lack a privilege).

    :param status: 401 or 403 (any other HTTP status is named as such).
    :param url: the target's URL, redacted here (pass the original: it is never kept).
    """

    def __init__(self, status: int, url: str, detail: str = "") -> None:
        self.status = status
        self.url = redact(url)
        self.detail = detail
        super().__init__(refusal(status, url) + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.status, self.url, self.detail))


def refusal(status: int, url: str) -> str:
    """``authentication failed (401) for <redacted url>`` / ``not authorised (403) for <redacted url>``."""
    return f"{_REFUSAL.get(status, f'refused with HTTP {status}')} for {redact(url)}"


def _split(url: str) -> tuple[str | None, str | None, str]:
    """``(scheme or None, raw userinfo or None, what follows the userinfo)``; the userinfo ends at the last @."""
    m = _SCHEME.match(url)
    scheme, rest = (m.group(1), url[m.end():]) if m else (None, url)
    at = rest.rfind("@")
    if at < 0:
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1:]


def redact(url: str) -> str:
    """``url`` with everything before the last ``@`` of its authority replaced by ``***`` (for messages).

    >>> redact("http://u:p@ss:w/rd@[::1]:9200/es")
    'http://***@[::1]:9200/es'
    >>> redact("user:secret@host:9200")
    '***@host:9200'
    """
    scheme, userinfo, rest = _split(url)
    if userinfo is None:
        return url
    return f"{scheme}://***@{rest}" if scheme is not None else f"***@{rest}"


@dataclass(frozen=True)
class Target:
    """A parsed target URL. ``str()`` and ``repr()`` never show the credentials."""

    scheme: str
    host: str                      #: without brackets (``::1`` for ``[::1]``)
    port: int | None
    path: str = ""                 #: ``""`` or ``/prefix`` (no trailing ``/``); query and fragment are dropped
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def default_port(self) -> int:
        """The port used when the URL names none: 443 for https, else Elasticsearch's 9200."""
        return 443 if self.scheme == "https" else 9200

    def url(self) -> str:
        """The URL without credentials, port always given (what a client or ``urllib`` is handed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.port if self.port is not None else self.default_port
        return f"{self.scheme}://{host}:{port}{self.path}"

    def __str__(self) -> str:
        url = self.url()
        if self.username is None:
            return url
        return url.replace("://", "://***@", 1)


def parse_target(url: str) -> Target:
    """Parse ``http(s)://[user[:password]@]host[:port][/path]`` (see the module doc for the rules).

    :raises TargetError: no scheme, a scheme other than http/https, no or a malformed host, a bad port.
    """
    shown = redact(url)
    scheme, userinfo, rest = _split(url.strip())
    if scheme is None:
        raise TargetError(f"target {shown} has no scheme; {FORMAT_HINT}")
    if scheme.lower() not in SCHEMES:
        raise TargetError(f"target {shown}: scheme {scheme!r} is not http or https; {FORMAT_HINT}")
    m = _HOST_PORT.fullmatch(rest)
    raw_host = m.group(1) if m else ""
    if raw_host.startswith("["):
        host = raw_host[1:-1]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise TargetError(f"target {shown}: {raw_host} is not an IPv6 address") from None
    else:
        host = raw_host
        if not _REG_NAME.fullmatch(host):
            raise TargetError(f"target {shown} has no host, or a malformed one (an IPv6 address goes in "
                              f"brackets: http://[::1]:9200); {FORMAT_HINT}")
    assert m is not None
    port: int | None = None
    if m.group(2) is not None and m.group(2) != "":
        if not m.group(2).isdigit() or not 0 < int(m.group(2)) < 65536:
            raise TargetError(f"target {shown}: port {m.group(2)!r} is not a number from 1 to 65535")
        port = int(m.group(2))
    tail = m.group(3) or ""
    path = re.split(r"[?#]", tail, maxsplit=1)[0].rstrip("/")
    username = password = None
    if userinfo is not None:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user)
        password = unquote(pw) if colon else None
    return Target(scheme.lower(), host, port, path, username, password)


def detect_target_type(url: str, *, username: str | None, password: str | None, api_key: str | None,
                       verify_certs: bool = True, ca_certs: str | None = None, timeout: float = 10.0) -> str:
    """``elasticsearch`` or ``opensearch``, from one ``GET /`` (Elasticsearch marks every answer with an
    ``X-elastic-product`` header, even a 405; OpenSearch names itself in ``version.distribution``).

    Credentials in the URL win over the keyword arguments; they are sent as a header, never in the URL.

    :raises TargetError: a malformed URL (no request is made).
    :raises TargetRefused: 401, or 403 from a server that does not say it is Elasticsearch.
    :raises ConnectionError: the server cannot be reached.
    :raises ValueError: the answer names neither kind.
    """
    import base64
    import json
    import ssl
    import urllib.error
    import urllib.request

    target = parse_target(url)
    if target.username is not None:
        username, password = target.username, target.password
    req = urllib.request.Request(target.url() + "/")
    if api_key:
        req.add_header("Authorization", f"ApiKey {api_key}")
    elif username is not None:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode())
    ctx = None
    if target.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca_certs)
        if not verify_certs:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    status = 200
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            headers, body = resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise ConnectionError(f"cannot reach {target}: TLS certificate verification failed "
                                  f"({reason.verify_message}); give the CA bundle that signed the server's "
                                  f"certificate (--ca-certs PEM)") from None
        raise ConnectionError(f"cannot reach {target}: {reason}") from None
    is_es = headers.get("X-elastic-product") == "Elasticsearch"
    if status == 401 or (status == 403 and not is_es):
        raise TargetRefused(status, url, "GET /")
    if is_es:
        return "elasticsearch"
    try:
        if json.loads(body).get("version", {}).get("distribution") == "opensearch":
            return "opensearch"
    except (ValueError, AttributeError):
        pass
    raise ValueError(f"{target} is neither Elasticsearch nor OpenSearch as far as GET / tells "
                     f"(HTTP {status}; pass --target-type)")
