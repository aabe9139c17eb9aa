"""The Dockerfile cannot be built here (no Docker engine), so what can be checked without building is: what it
COPYs exists, and its versions agree with the tested lock and with the deployment requirements."""
from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bundler():
    spec = importlib.util.spec_from_file_location("mwaa_bundle", ROOT / "scripts" / "mwaa_bundle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mwaa_bundle", module)
    spec.loader.exec_module(module)
    return module


def _instructions() -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, shell-split arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), shlex.split(rest)))
    return out


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def _constraint_versions(line: str) -> tuple[str, str]:
    """(Airflow, Python) of a constraints URL (…/constraints-3.3.1/constraints-3.12.txt) or a file name
    (constraints-3.3.1-3.12.txt, the copy inside plugins.zip)."""
    m = re.search(r"constraints-(\d+\.\d+\.\d+)[/-]constraints-(\d+\.\d+)\.txt", line) or \
        re.search(r"constraints-(\d+\.\d+\.\d+)-(\d+\.\d+)\.txt", line)
    assert m, f"not a constraints reference: {line}"
    return m.group(1), m.group(2)


def _from() -> tuple[str, str]:
    (image,) = [args[0] for word, args in _instructions() if word == "FROM"]
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", image)
    assert m, f"FROM {image}: expected apache/airflow:<airflow>-python<python>"
    return m.group(1), m.group(2)


def test_everything_copied_exists() -> None:
    copies = [args for word, args in _instructions() if word == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args if not a.startswith("--")][:-1]
        assert sources, args
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the checkout"


def test_image_airflow_and_python_agree_with_the_lock_and_mwaa() -> None:
    mb = _bundler()
    airflow, python = _from()
    lock = _lock()
    assert airflow == lock["apache-airflow"] == lock["apache-airflow-core"]
    assert python == mb.MWAA_PYTHON_VERSION == "3.12"
    # the provider is installed under the lock, with the image's Airflow pinned so pip cannot move it
    (run,) = [args for word, args in _instructions() if word == "RUN" and "pip" in args]
    assert f"apache-airflow=={airflow}" in run
    lock_copy = run[run.index("-c") + 1]
    assert any(word == "COPY" and args[-1] == lock_copy and ".ci/constraints.txt" in args
               for word, args in _instructions())


def test_requirements_constraints_lines_agree() -> None:
    mb = _bundler()
    airflow, python = _from()
    (line,) = [x for x in (ROOT / "requirements.txt").read_text().splitlines()
               if x.startswith(("--constraint", "-c "))]
    req_airflow, req_python = _constraint_versions(line)
    # requirements.txt and the MWAA bundle target MWAA's Airflow; the image and the lock are the same minor
    assert req_python == python
    assert req_airflow == mb.MWAA_AIRFLOW_VERSION
    assert req_airflow.split(".")[:2] == airflow.split(".")[:2]
    bundle = mb.requirements_text("0", mb.constraints_file().name, mb.MWAA_AIRFLOW_VERSION, python, False)
    (bline,) = [x for x in bundle.splitlines() if x.startswith("--constraint")]
    assert _constraint_versions(bline) == (req_airflow, req_python)
    assert mb.constraints_file().exists()
    assert _constraint_versions(mb.requirements_text("0", "x", mb.MWAA_AIRFLOW_VERSION, python, True)) == \
        (req_airflow, req_python)
