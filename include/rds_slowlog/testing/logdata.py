"""Real server logs moved in time, for tests and the demo that need several hourly windows.

The bundled samples (and the logs the tests make with :mod:`rds_slowlog.testing.dbservers`) were written by
real servers within seconds. The hourly DAG needs entries in several hours, so :func:`spread_over_hours` cuts
a log into consecutive parts at entry boundaries and shifts every timestamp of part *k* by the same amount,
so that it lies in hour *k*: every byte other than the time digits is the server's own, and within a part the
times keep their real order, back-and-forth included.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["spread_over_hours"]

_MY_TIME = re.compile(rb"^# Time: (\d{6}) ([ \d]\d:\d\d:\d\d)", re.M)
_MY_ISO = re.compile(rb"^# Time: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", re.M)
_SET_TS = re.compile(rb"(SET (?:[^\n]*?,)?timestamp=)(\d+)")
_ISO_ATTR = re.compile(rb"((?:Start|End): )(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
_PG_TIME = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)
_MY_ENTRY = re.compile(rb"^# User@Host: ", re.M)


def _naive(raw: bytes, fmt: str) -> float:
    return datetime.strptime(raw.decode(), fmt).replace(tzinfo=timezone.utc).timestamp()


def _fmt(t: float, fmt: str) -> bytes:
    return time.strftime(fmt, time.gmtime(t)).encode()


def _mariadb_time(m: re.Match[bytes], delta: int) -> bytes:
    """``# Time: 261127 9:05:01`` (MariaDB pads a one-digit hour with a space) moved by ``delta`` seconds."""
    t = _naive(m.group(1) + b" " + m.group(2).replace(b" ", b"0"), "%y%m%d %H:%M:%S") + delta
    clock = _fmt(t, "%H:%M:%S")
    if clock[:1] == b"0":
        clock = b" " + clock[1:]
    return b"# Time: " + _fmt(t, "%y%m%d") + b" " + clock


def _shift(part: bytes, delta: int, engine: str) -> bytes:
    def iso(fmt: str, group: int = 1) -> Callable[[re.Match[bytes]], bytes]:
        def repl(m: re.Match[bytes]) -> bytes:
            raw = m.group(group)
            return m.group(0).replace(raw, _fmt(_naive(raw, fmt) + delta, fmt), 1)
        return repl

    if engine == "postgres":
        return _PG_TIME.sub(iso("%Y-%m-%d %H:%M:%S"), part)
    out = _MY_TIME.sub(lambda m: _mariadb_time(m, delta), part)
    out = _MY_ISO.sub(iso("%Y-%m-%dT%H:%M:%S"), out)
    out = _ISO_ATTR.sub(iso("%Y-%m-%dT%H:%M:%S", 2), out)
    return _SET_TS.sub(lambda m: m.group(1) + str(int(m.group(2)) + delta).encode(), out)


def spread_over_hours(data: bytes, engine: str, first_hour: float, hours: int = 3,
                      minute: int = 10) -> bytes:
    """``data`` cut into ``hours`` parts at entry boundaries, part *k* moved to start at
    ``first_hour + k h + minute min`` (UTC). Entries without a time of their own (MariaDB writes ``# Time:``
    once a second) move with the part they are in. Parts start at timed entries; only a MySQL log written in
    fewer seconds than ``hours`` is also cut inside a second (that part opens with the second's ``# Time:``)."""
    if engine == "postgres":
        starts = [m.start() for m in _PG_TIME.finditer(data)]
        first = _naive(_PG_TIME.search(data).group(1), "%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]
    else:
        marks = list(_MY_TIME.finditer(data)) or list(_MY_ISO.finditer(data))
        starts = [m.start() for m in marks]
        m0 = marks[0]
        first = (_naive(m0.group(1) + b" " + m0.group(2).replace(b" ", b"0"), "%y%m%d %H:%M:%S")
                 if m0.re is _MY_TIME else _naive(m0.group(1), "%Y-%m-%dT%H:%M:%S"))
    heads: dict[int, bytes] = {}      # cut → the ``# Time:`` line its part opens with (a cut inside a second)
    if engine != "postgres" and len(starts) < hours:
        # A fast server writes a whole log in fewer seconds than there are hours: cut between the entries of one
        # second too, and open such a part with that second's ``# Time:`` line again (the only bytes added), so
        # its first entries keep their time instead of taking the previous part's.
        entries = [m.start() for m in _MY_ENTRY.finditer(data)]
        if len(entries) < hours:
            raise ValueError(f"the log has {len(entries)} entries: too few to spread over {hours} hours")
        cuts = [0]
        for k in range(1, hours):
            cut = entries[len(entries) * k // hours]
            before = [m for m in marks if m.start() < cut]
            line_start = data.rfind(b"\n", 0, cut - 1) + 1
            if before and before[-1].start() == line_start:
                cut = line_start                            # the entry's own ``# Time:`` goes with it
            elif before:
                heads[cut] = data[before[-1].start():data.index(b"\n", before[-1].start()) + 1]
            cuts.append(cut)
        cuts.append(len(data))
    elif len(starts) < hours:
        raise ValueError(f"the log has {len(starts)} timed entries: too few to spread over {hours} hours")
    else:
        cuts = [0] + [starts[len(starts) * k // hours] for k in range(1, hours)] + [len(data)]
    out = []
    for k in range(hours):
        delta = int(first_hour + k * 3600 + minute * 60 - first)
        out.append(_shift(heads.get(cuts[k], b"") + data[cuts[k]:cuts[k + 1]], delta, engine))
    return b"".join(out)
