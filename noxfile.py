"""Task runner. ``nox -l`` lists the sessions; ``nox -s tests -- -k cluster`` passes args to pytest.

Sessions: tests, lint, typecheck, demo, bench, docs, faults. The test sessions need ``redis-server``
and ``redis-cli`` on PATH (or QUEUESTORE_TEST_SERVER_BIN / QUEUESTORE_TEST_CLI_BIN): see
docs/testing.md.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
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
def faults(session: nox.Session) -> None:
    """Run the standing fault suite (tests/faults/suite, ``-m faults``) and print its JSON summary's
    path and table; ``QUEUESTORE_FAULTS_SUMMARY`` sets the path. Extra args go to pytest."""
    session.install("-e", ".[test]")
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
    """Check the relative links of README.md and docs/; mypy --strict and run README's example."""
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

    examples = readme_examples(ROOT / "README.md")
    if examples:
        session.install(".", "mypy>=1.10")
        tmp = Path(session.create_tmp()).resolve()
        with session.chdir(tmp):  # the installed package, not the source tree
            for number, code in enumerate(examples, 1):
                script = tmp / f"readme_example_{number}.py"
                script.write_text(code, encoding="utf-8")
                session.run("mypy", "--strict", "--no-incremental", str(script))
                session.run("python", str(script))
