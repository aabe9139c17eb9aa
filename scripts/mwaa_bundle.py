#!/usr/bin/env python3
"""Build the Amazon MWAA bundle: ``dist/mwaa/`` = plugins.zip + requirements.txt + dags/ + DEPLOY.md.

MWAA installs ``requirements.txt`` with pip on every container, after unpacking ``plugins.zip`` to
``/usr/local/airflow/plugins``. The bundle is made to install there with ``--no-index`` (no PyPI at all, so it
works in private-network environments and cannot pick up a different version on the next container start):
every wheel the provider needs that the MWAA image does not already have is inside plugins.zip.

What "already has" means is computed, not guessed: ``deploy/mwaa/base-requirements-<v>.txt`` is the package
list the MWAA image installs (from aws/amazon-mwaa-docker-images) and ``constraints-<v>-3.12.txt`` the
constraints it installs them with; pip resolves that list for the target Python and platform, and whatever the
provider's own resolution shares with it stays out of the zip. Resolutions are pip ``--dry-run --report`` runs
for the target (``--python-version``, manylinux platforms up to the target's glibc, ``--only-binary=:all:``).
Environment markers are evaluated by the interpreter pip runs under, so the bundler runs pip under a Python of
the target version when one is on this machine and says so when it has to fall back to the current one.

Reproducible: the provider wheel is built with SOURCE_DATE_EPOCH, wheels are pinned by the resolution and
checked against the index's sha256, and the zip has sorted entries with fixed timestamps and modes.

Usage: ``python scripts/mwaa_bundle.py [--python-version 3.12] [--out dist/mwaa]`` (``make mwaa-bundle``).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MWAA_DIR = ROOT / "deploy" / "mwaa"
#: The MWAA release the bundle targets (its image: Amazon Linux 2023, glibc 2.34, Python 3.12).
MWAA_AIRFLOW_VERSION = "3.3.1"
MWAA_PYTHON_VERSION = "3.12"
MWAA_GLIBC = (2, 34)
#: Where MWAA unpacks plugins.zip on every container.
MWAA_PLUGINS = "/usr/local/airflow/plugins"
PROVIDER = "airflow-provider-rds-slowlog"
PROVIDER_EXTRA = "airflow"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def canonical(name: str) -> str:
    """PEP 503 name, so ``Flask_Login`` and ``flask-login`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_file(airflow_version: str = MWAA_AIRFLOW_VERSION) -> Path:
    """MWAA's copy of the Airflow constraints; the 3.12 file is the only one MWAA uses (and the only one stored)."""
    return MWAA_DIR / f"constraints-{airflow_version}-{MWAA_PYTHON_VERSION}.txt"


def essential_constraints(airflow_version: str = MWAA_AIRFLOW_VERSION) -> dict[str, str]:
    """Packages MWAA refuses to let requirements.txt change (name → pinned version)."""
    return dict(_pins((MWAA_DIR / f"essential-constraints-{airflow_version}.txt").read_text()))


def base_requirements(airflow_version: str = MWAA_AIRFLOW_VERSION) -> tuple[list[str], list[str]]:
    """(requirements pip can resolve, sdist-only names counted as provided) of the MWAA image install."""
    reqs, sdist_only = [], []
    for line in (MWAA_DIR / f"base-requirements-{airflow_version}.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("# sdist-only:"):
            sdist_only.append(canonical(line.split(":", 1)[1].strip()))
        elif line and not line.startswith("#"):
            reqs.append(line)
    return reqs, sdist_only


def _pins(text: str) -> Iterable[tuple[str, str]]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            yield canonical(name), version.strip()


def platforms(glibc: tuple[int, int] = MWAA_GLIBC) -> list[str]:
    """Every manylinux tag a glibc-``glibc`` x86_64 host accepts (pip does not expand ``manylinux_2_X`` tags)."""
    tags = ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    tags += [f"manylinux_2_{minor}_x86_64" for minor in range(5, glibc[1] + 1)]
    return tags


def target_interpreter(python_version: str) -> str | None:
    """A Python of the target version on this machine (so pip evaluates markers for it), or None."""
    candidates = [shutil.which(f"python{python_version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python_version}.*/bin/python{python_version}")))
    candidates += [f"/usr/bin/python{python_version}", f"/usr/local/bin/python{python_version}"]
    for exe in candidates:
        if not exe or not os.path.exists(exe):
            continue
        try:
            out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == python_version:
            return exe
    return None


@dataclass
class Bundle:
    """A built bundle: its manifest (``bundle.json``) and pip's report entries of what MWAA provides."""

    manifest: dict[str, Any]
    provided: dict[str, dict[str, Any]]


@dataclass
class Target:
    """What pip resolves for: the MWAA container's Python, platform tags and (if present) a matching interpreter."""

    python_version: str = MWAA_PYTHON_VERSION
    platforms: list[str] = field(default_factory=platforms)
    interpreter: str | None = None

    def pip_flags(self) -> list[str]:
        flags = ["--python-version", self.python_version, "--only-binary=:all:", "--implementation", "cp"]
        for tag in self.platforms:
            flags += ["--platform", tag]
        return flags

    def pip(self) -> list[str]:
        """This venv's pip, run against the target interpreter when there is one (markers then match)."""
        cmd = [sys.executable, "-m", "pip"]
        if self.interpreter:
            cmd += ["--python", self.interpreter]
        return cmd


def run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run and fail with pip's own words (its last lines) rather than a bare exit status."""
    res = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-25:])
        raise SystemExit(f"mwaa-bundle: command failed ({res.returncode}): {' '.join(cmd)}\n{tail}")
    return res


def resolve(target: Target, requirements: Sequence[str], constraints: Path, work: Path, name: str,
            extra_args: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """pip's resolution for the target: canonical name → report entry (metadata, download_info)."""
    report = work / f"{name}.json"
    req_file = work / f"{name}.txt"
    req_file.write_text("\n".join(requirements) + "\n")
    run([*target.pip(), "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         *target.pip_flags(), "-c", str(constraints), *extra_args, "-r", str(req_file)])
    data = json.loads(report.read_text())
    return {canonical(i["metadata"]["name"]): i for i in data["install"]}


def build_provider_wheel(out: Path, epoch: int) -> Path:
    """The provider's own wheel (pure Python), built from this checkout with a fixed SOURCE_DATE_EPOCH."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)], env=env)
    wheels = sorted(out.glob("airflow_provider_rds_slowlog-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"mwaa-bundle: expected one provider wheel in {out}, found {wheels}")
    return wheels[0]


def source_epoch() -> int:
    """The last commit's time (reproducible builds of one commit); 1980-01-01 outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True,
                             text=True, timeout=30)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 315532800


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(target: Target, entries: Sequence[dict[str, Any]], dest: Path) -> list[Path]:
    """The resolved wheels themselves (pip's cache makes reruns fast), each checked against the index's sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    urls = [e["download_info"]["url"] for e in entries]
    if urls:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest),
             *target.pip_flags(), *urls])
    files = []
    for e in entries:
        path = dest / e["download_info"]["url"].rsplit("/", 1)[-1]
        want = e["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not path.exists():
            raise SystemExit(f"mwaa-bundle: {path.name} was not downloaded")
        if want and sha256(path) != want:
            raise SystemExit(f"mwaa-bundle: {path.name} does not match the index's sha256 {want}")
        files.append(path)
    return files


def write_zip(path: Path, members: dict[str, Path]) -> None:
    """A zip whose bytes depend only on the members' names and contents (sorted, fixed time and mode)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname in sorted(members):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, members[arcname].read_bytes())


def copy_dags(src: Path, dest: Path) -> list[str]:
    """The DAG files and their configs; returns the non-DAG names written to ``.airflowignore``."""
    dest.mkdir(parents=True, exist_ok=True)
    ignored = []
    for f in sorted(src.iterdir()):
        if f.name.startswith(".") or f.name == "__pycache__" or not f.is_file() or f.suffix == ".pyc":
            continue
        shutil.copyfile(f, dest / f.name)
        if f.suffix != ".py":
            ignored.append(f.name)
    # exact names: the same line means the file under both the glob and the regexp ignore syntax
    (dest / ".airflowignore").write_text(
        "# Not DAG files (configs read by the DAG file): MWAA parses only what is left.\n"
        + "".join(f"{name}\n" for name in ignored))
    return ignored


def staging_warnings(dags: Path) -> list[str]:
    """Configs whose staging/archive is not on object storage: MWAA workers share no disk."""
    out = []
    for cfg in sorted(dags.glob("rds_slowlog*.json")):
        data = json.loads(cfg.read_text())
        for key in ("staging",):
            value = str(data.get(key, ""))
            if not value.startswith("s3://"):
                out.append(f"{cfg.name}: {key} is {value!r}; on MWAA set it to s3://<conn_id>@<bucket>/<prefix> "
                           "(workers share no disk)")
    return out


def requirements_text(provider_version: str, constraints_name: str, airflow_version: str,
                      python_version: str, constraints_url: bool) -> str:
    line = (f'--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow_version}/'
            f'constraints-{MWAA_PYTHON_VERSION}.txt"' if constraints_url
            else f'--constraint "{MWAA_PLUGINS}/{constraints_name}"')
    return (f"# {PROVIDER} {provider_version} for Amazon MWAA (Airflow {airflow_version}, Python {python_version}).\n"
            "# Generated by scripts/mwaa_bundle.py: every dependency MWAA does not already have is a wheel in\n"
            "# plugins.zip, so pip needs no index; the constraints are MWAA's own (Airflow's constraints for\n"
            f"# {airflow_version}, shipped inside plugins.zip so private-network environments need no internet).\n"
            f"{line}\n"
            f"--find-links {MWAA_PLUGINS}\n"
            "--no-index\n"
            f"{PROVIDER}[{PROVIDER_EXTRA}]=={provider_version}\n")


def render_deploy(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{[a-z_]+\}\}", text)
    if left:
        raise SystemExit(f"mwaa-bundle: DEPLOY.md placeholders without a value: {left}")
    return text


def build(out: Path, python_version: str = MWAA_PYTHON_VERSION, airflow_version: str = MWAA_AIRFLOW_VERSION,
          glibc: tuple[int, int] = MWAA_GLIBC, constraints_url: bool = False,
          interpreter: str | None = "auto", log: Any = print) -> Bundle:
    """Write the bundle to ``out`` (replaced); returns its manifest (also ``bundle.json``) and MWAA's set."""
    constraints = constraints_file(airflow_version)
    exe = target_interpreter(python_version) if interpreter == "auto" else interpreter
    target = Target(python_version, platforms(glibc), exe)
    if exe is None:
        log(f"mwaa-bundle: no Python {python_version} here; pip evaluates environment markers with "
            f"{sys.version_info.major}.{sys.version_info.minor} (tags and Requires-Python are still {python_version})")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="mwaa-bundle-") as tmp:
        work = Path(tmp)
        wheel = build_provider_wheel(work / "provider", source_epoch())
        provider_version = wheel.name.split("-")[1]
        reqs, sdist_only = base_requirements(airflow_version)
        provided = resolve(target, reqs, constraints, work, "base")
        closure = resolve(target, [*reqs, f"{PROVIDER}[{PROVIDER_EXTRA}] @ {wheel.as_uri()}"], constraints,
                          work, "closure")
        provided_names = set(provided) | set(sdist_only)
        bundled = {n: e for n, e in sorted(closure.items()) if n not in provided_names and n != PROVIDER}
        clash = sorted(set(bundled) & set(essential_constraints(airflow_version)))
        if clash:
            raise SystemExit(f"mwaa-bundle: the provider needs other versions of MWAA's essential packages: {clash}")
        changed = sorted(n for n in provided if n in closure
                         and closure[n]["metadata"]["version"] != provided[n]["metadata"]["version"])
        if changed:
            raise SystemExit(f"mwaa-bundle: the provider would change packages MWAA provides: {changed}")
        wheels = download(target, list(bundled.values()), work / "wheels")
        members: dict[str, Path] = {wheel.name: wheel, constraints.name: constraints}
        members.update({w.name: w for w in wheels})
        ui_plugins = sorted((ROOT / "plugins").glob("*.py"))
        members.update({p.name: p for p in ui_plugins})
        write_zip(out / "plugins.zip", members)
        (out / "requirements.txt").write_text(
            requirements_text(provider_version, constraints.name, airflow_version, python_version, constraints_url))
        ignored = copy_dags(ROOT / "dags", out / "dags")
        policy = (MWAA_DIR / "iam-policy.json").read_text()
        (out / "iam-policy.json").write_text(policy)
        unpinned = sorted(n for n in bundled if n not in dict(_pins(constraints.read_text())))
        rows = "\n".join(f"| `{w.name}` | {bundled[canonical(w.name.split('-')[0])]['metadata']['version']} |"
                         for w in wheels)
        manifest = {
            "mwaa_airflow_version": airflow_version, "python_version": python_version,
            "platforms": target.platforms, "markers_evaluated_by": exe or sys.executable,
            "provider": {"name": PROVIDER, "version": provider_version, "wheel": wheel.name},
            "provided": {n: e["metadata"]["version"] for n, e in sorted(provided.items())},
            "provided_sdist_only": sdist_only,
            "bundled": {n: {"version": e["metadata"]["version"], "wheel": e["download_info"]["url"].rsplit("/", 1)[-1],
                            "sha256": e["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")}
                        for n, e in bundled.items()},
            "unpinned_by_constraints": unpinned,
            "ui_plugins": [p.name for p in ui_plugins],
            "airflowignore": ignored,
            "plugins_zip_sha256": sha256(out / "plugins.zip"),
        }
        (out / "bundle.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (out / "DEPLOY.md").write_text(render_deploy(MWAA_DIR / "DEPLOY.md", {
            "airflow_version": airflow_version, "python_version": python_version,
            "provider_version": provider_version, "wheel_count": str(len(wheels)),
            "wheel_table": rows or "| (none) | |", "provided_count": str(len(provided)),
            "iam_policy": policy.strip(),
            "unpinned": ", ".join(unpinned) or "none",
        }))
    for warning in staging_warnings(out / "dags"):
        log(f"mwaa-bundle: warning: {warning}")
    size = (out / "plugins.zip").stat().st_size
    log(f"mwaa-bundle: {out}: plugins.zip {size / 1e6:.1f} MB ({len(wheels)} wheels + provider "
        f"{provider_version}; {len(provided)} packages left to MWAA), requirements.txt, dags/, DEPLOY.md")
    return Bundle(manifest, provided)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "dist" / "mwaa")
    p.add_argument("--python-version", default=MWAA_PYTHON_VERSION,
                   help="the MWAA containers' Python (default %(default)s; 3.11 for a local install test)")
    p.add_argument("--airflow-version", default=MWAA_AIRFLOW_VERSION, help="the MWAA Airflow version")
    p.add_argument("--glibc", default=".".join(map(str, MWAA_GLIBC)),
                   help="the image's glibc: newest manylinux tag accepted (default %(default)s, Amazon Linux 2023)")
    p.add_argument("--constraints-url", action="store_true",
                   help="reference the upstream constraints URL instead of the copy inside plugins.zip")
    p.add_argument("--interpreter", default="auto",
                   help="Python whose markers pip evaluates (default: one of the target version, if present)")
    args = p.parse_args(argv)
    major, minor = (int(x) for x in args.glibc.split("."))
    build(args.out, args.python_version, args.airflow_version, (major, minor), args.constraints_url, None if args.interpreter == "none" else args.interpreter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
