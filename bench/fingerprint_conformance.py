"""Compare ``rds_slowlog.fingerprint.mysql.fingerprint`` with pt-fingerprint 3.2.1 on a slow-log corpus.

Usage::

    .venv/bin/python bench/fingerprint_conformance.py [CORPUS_DIR]   # default ../shared/conformance/percona-slowlogs

How the comparison is made (and why it is honest):

* **Which queries.** Every query that pt-query-digest itself sees in each file: pt-query-digest's own
  slow-log parser runs with ``--no-report --filter`` code that prints each event's ``arg`` (the query
  text, byte for byte) and rejects the event. So query extraction depends neither on our parser nor on
  a guess; ``.gz`` files are decompressed to a temporary file first.
* **Which reference.** ``pt-fingerprint --query Q`` for each distinct query. Running ``pt-fingerprint FILE``
  is *not* usable: its file mode splits on ``;\\n`` and has its own record handling (it drops records
  that start with a comment, and mysqld banners), so its lines do not line up with slow-log events.
  To avoid one Perl start per query (~60 ms x 2000), one ``perl`` process loads ``/usr/bin/pt-fingerprint``
  (a modulino: loading it does not run it) and calls its ``main("--query", Q)`` for each query: the
  tool's exact ``--query`` code path, used as a black box (no Percona code is read or copied). The
  bridge is checked against real ``pt-fingerprint --query`` subprocesses on a sample before use.
* **What is printed.** The number of events and distinct queries, how many fingerprints are identical,
  every difference (file, query, pt's and ours), and fingerprints/s of our function on the distinct
  queries with no cache.
"""
from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "conformance" / "percona-slowlogs"

# Prints each event's query followed by a NUL, then rejects the event (so nothing is aggregated).
_DIGEST_FILTER = 'print(STDOUT $event->{arg}, "\\0") && 0'

# Loads pt-fingerprint without running it and calls its --query entry point once per NUL-terminated
# query on stdin; each answer is followed by a NUL. $/ is restored to "\n" around main() because the
# tool chomps the query (a trailing newline matters to the fingerprint).
_PERL_BRIDGE = r"""
my $tool = shift @ARGV;
require $tool;
binmode STDIN; binmode STDOUT;
my @queries = do { local $/ = "\0"; <STDIN> };
for my $q (@queries) { chop $q; pt_fingerprint::main("--query", $q); print "\0"; }
"""


def _encode(query: str) -> bytes:
    return query.encode("utf-8", "surrogateescape")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def corpus_files(corpus: Path) -> list[Path]:
    """The slow-log files of a corpus directory, sorted (``.gz`` included)."""
    return sorted(p for p in corpus.iterdir() if p.is_file())


def extract_queries(path: Path, digest: str | None = None) -> list[str]:
    """Every query pt-query-digest sees in ``path``, in order (see the module docstring)."""
    digest = digest or shutil.which("pt-query-digest") or "pt-query-digest"
    if path.suffix != ".gz":
        return _run_digest(digest, path)
    # Not via stdin: pt-query-digest then prints "Reading from STDIN ..." on stdout, in front of the
    # first query.
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        return _run_digest(digest, plain)


def _run_digest(digest: str, path: Path) -> list[str]:
    proc = subprocess.run(
        [digest, "--no-report", "--filter", _DIGEST_FILTER, str(path)],
        capture_output=True, check=True, timeout=300,
    )
    # The report footer ("# No events processed.") follows the last NUL and is dropped.
    return [_decode(q) for q in proc.stdout.split(b"\0")[:-1]]


def reference_fingerprints(queries: Sequence[str], tool: str | None = None) -> list[str]:
    """pt-fingerprint's ``--query`` output for each query, from one perl process."""
    tool = tool or shutil.which("pt-fingerprint") or "/usr/bin/pt-fingerprint"
    payload = b"".join(_encode(q) + b"\0" for q in queries)
    proc = subprocess.run(
        ["perl", "-e", _PERL_BRIDGE, tool], input=payload, capture_output=True, check=True, timeout=600
    )
    answers = proc.stdout.split(b"\0")[:-1]
    if len(answers) != len(queries):
        raise RuntimeError(f"pt-fingerprint bridge gave {len(answers)} answers for {len(queries)} queries: "
                           f"{proc.stderr[:500]!r}")
    out = []
    for raw in answers:
        if not raw.endswith(b"\n"):
            raise RuntimeError(f"unexpected pt-fingerprint output {raw[:200]!r}")
        out.append(_decode(raw[:-1]))
    return out


def check_bridge(queries: Iterable[str], tool: str | None = None) -> list[tuple[str, str, str]]:
    """Queries where the bridge and a real ``pt-fingerprint --query`` process disagree (should be none)."""
    tool = tool or shutil.which("pt-fingerprint") or "pt-fingerprint"
    sample = [q for q in queries if "\0" not in q]
    bridged = reference_fingerprints(sample, tool)
    bad = []
    for q, b in zip(sample, bridged):
        raw = subprocess.run([tool, "--query", _encode(q)], capture_output=True, timeout=60).stdout
        real = _decode(raw[:-1] if raw.endswith(b"\n") else raw)
        if real != b:
            bad.append((q, real, b))
    return bad


@dataclass
class Report:
    events: int = 0
    distinct: int = 0
    identical: int = 0
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)  # file, query, pt, ours
    files: int = 0

    @property
    def ratio(self) -> float:
        return self.identical / self.distinct if self.distinct else 1.0


def compare_corpus(corpus: Path, fingerprint=None) -> tuple[Report, list[str]]:
    """Fingerprint every distinct query of the corpus both ways; return the report and the queries."""
    if fingerprint is None:
        from rds_slowlog.fingerprint.mysql import fingerprint
    first_file: dict[str, str] = {}
    report = Report()
    for path in corpus_files(corpus):
        report.files += 1
        for q in extract_queries(path):
            report.events += 1
            first_file.setdefault(q, path.name)
    queries = list(first_file)
    expected = reference_fingerprints(queries)
    report.distinct = len(queries)
    for q, exp in zip(queries, expected):
        got = fingerprint(q)
        if got == exp:
            report.identical += 1
        else:
            report.differences.append((first_file[q], q, exp, got))
    return report, queries


def measure_speed(queries: Sequence[str], fingerprint=None, repeat: int = 5) -> float:
    """Best-of-``repeat`` fingerprints per second over ``queries`` with no cache."""
    if fingerprint is None:
        from rds_slowlog.fingerprint.mysql import fingerprint
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for q in queries:
            fingerprint(q)
        best = min(best, time.perf_counter() - t0)
    return len(queries) / best


def _short(text: str, n: int = 300) -> str:
    return repr(text if len(text) <= n else text[:n] + f"…(+{len(text) - n} chars)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    corpus = Path(args[0]) if args else DEFAULT_CORPUS
    for tool in ("pt-fingerprint", "pt-query-digest", "perl"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install percona-toolkit)", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    report, queries = compare_corpus(corpus)
    t1 = time.perf_counter()
    bridge_bad = check_bridge(queries[:: max(1, len(queries) // 20)][:20])
    print(f"corpus: {corpus} ({report.files} files, {report.events} events)")
    print(f"distinct queries: {report.distinct}")
    print(f"identical fingerprints: {report.identical} ({100 * report.ratio:.2f} %)")
    print(f"bridge vs real pt-fingerprint --query on a sample: "
          f"{'agree' if not bridge_bad else f'{len(bridge_bad)} DISAGREE'}")
    print(f"differences: {len(report.differences)}")
    for name, q, exp, got in report.differences:
        print(f"- {name}\n  query: {_short(q)}\n  pt:    {_short(exp)}\n  ours:  {_short(got)}")
    small = [q for q in queries if len(q) <= 100_000]
    print(f"speed (no cache, best of 5): {measure_speed(queries):,.0f} fingerprints/s on all "
          f"{len(queries)} distinct queries ({sum(map(len, queries)) / 1e6:.1f} M chars); "
          f"{measure_speed(small):,.0f} fingerprints/s on the {len(small)} under 100 k chars")
    print(f"(extraction + reference took {t1 - t0:.1f} s)")
    return 0 if report.ratio >= 0.995 and not bridge_bad else 1


if __name__ == "__main__":
    sys.exit(main())
