"""mkdocs hook: generated tables, the README as a page, links out of docs/, a complete nav.

* ``<!-- generated: NAME ARGS -->`` in a page is replaced at build time (the
  Markdown in git stays hand-written; GitHub shows the text around the marker):
  ``capabilities``, ``options module:Struct [minus module:Base]`` (or ``fields``:
  the same table, headed "field"),
  ``dialect-defaults``, ``api module`` (one mkdocstrings block per name of the
  module's ``__all__``).
* README.md becomes the page ``readme.md``; a relative link that leaves docs/
  (``../README.md``, ``../noxfile.py``) is pointed at that page or at a copy of
  the file published under ``_repo/``, so the same links work on GitHub and in
  the site. Sphinx roles left in docstrings (``:class:`~a.B```) show as code.
* Every page must be in ``nav`` (a warning names the one that is not); a nav
  entry whose page does not exist is left out, with a note in the log.
"""

from __future__ import annotations

import importlib
import logging
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_capabilities import capability_table
from gen_options import dialect_defaults_table, load_struct, options_table

log = logging.getLogger("mkdocs.plugins.queuestore_docs")

ROOT = Path(__file__).resolve().parents[2]
README_PAGE = "readme.md"
REPO_COPIES = "_repo"
_MARKER = re.compile(r"<!--\s*generated:\s*([\w-]+)(.*?)-->")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
#: a Sphinx role left in a docstring, as Markdown renders it: :meth:<code>~pkg.Name.attr</code>
_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj):<code>(~?)([^<]*)</code>")

_copies: dict[str, Path] = {}


# -- generated content ---------------------------------------------------------------------------


def _api(module_name: str) -> str:
    module = importlib.import_module(module_name)
    blocks = []
    for name in sorted(getattr(module, "__all__", ()), key=str.lower):
        if name.startswith("__"):
            continue
        blocks.append(f"::: {module_name}.{name}\n")
    return "\n".join(blocks)


def _options(args: str, where: str, label: str) -> str:
    parts = args.split()
    exclude = load_struct(parts[2]) if len(parts) == 3 and parts[1] == "minus" else None
    struct = load_struct(parts[0])
    table, missing = options_table(struct, exclude, label=label)
    for name in missing:
        log.warning(
            f"{where}: {label} {name!r} of {struct.__name__} has no description: add it to the "
            "Attributes section of its class docstring, or as a '#:' comment above the field"
        )
    return table


def _generate(name: str, args: str, where: str) -> str:
    if name == "capabilities":
        return capability_table()
    if name in ("options", "fields"):
        return _options(args, where, label=name.removesuffix("s"))
    if name == "dialect-defaults":
        return dialect_defaults_table()
    if name == "api":
        return _api(args.strip())
    log.warning(f"{where}: unknown generated block {name!r}")
    return ""


# -- links that leave docs/ ----------------------------------------------------------------------


def _source_of(src_uri: str, docs_dir: Path) -> Path:
    """Where a page's Markdown really is (links in it are relative to that)."""
    if src_uri == README_PAGE:
        return ROOT / "README.md"
    if src_uri.startswith(f"{REPO_COPIES}/"):
        return ROOT / src_uri.removeprefix(f"{REPO_COPIES}/")
    return docs_dir / src_uri


def _in_docs(src_uri: str) -> bool:
    return src_uri != README_PAGE and not src_uri.startswith(f"{REPO_COPIES}/")


def _rewrite(target: str, src_uri: str, docs_dir: Path) -> str:
    if _SCHEME.match(target) or target.startswith(("#", "/")):
        return target
    file_part, hash_, anchor = target.partition("#")
    if not file_part:
        return target
    resolved = (_source_of(src_uri, docs_dir).parent / file_part).resolve()
    if resolved == (ROOT / "README.md").resolve():
        uri = README_PAGE
    elif resolved.is_relative_to(docs_dir.resolve()):
        if _in_docs(src_uri):
            return target
        uri = resolved.relative_to(docs_dir.resolve()).as_posix()
    elif resolved.is_relative_to(ROOT) and resolved.is_file():
        uri = f"{REPO_COPIES}/{resolved.relative_to(ROOT).as_posix()}"
        _copies[uri] = resolved
    else:
        return target
    relative = posixpath.relpath(uri, posixpath.dirname(src_uri) or ".")
    return relative + hash_ + anchor


def _transform(markdown: str, src_uri: str, docs_dir: Path, *, generate: bool = True) -> str:
    out: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            line = _LINK.sub(
                lambda m: m.group(1) + _rewrite(m.group(2), src_uri, docs_dir) + m.group(3), line
            )
            if generate:
                line = _MARKER.sub(lambda m: _generate(m.group(1), m.group(2), src_uri), line)
        out.append(line)
    return "\n".join(out) + "\n"


# -- nav -----------------------------------------------------------------------------------------


def _prune(nav: Any, known: set[str]) -> Any:
    """``nav`` without the entries whose page does not exist (logged)."""
    if isinstance(nav, list):
        kept = [_prune(item, known) for item in nav]
        return [item for item in kept if item is not None]
    if isinstance(nav, dict):
        ((title, value),) = nav.items()
        pruned = _prune(value, known)
        return None if pruned is None or pruned == [] else {title: pruned}
    if isinstance(nav, str) and not _SCHEME.match(nav) and nav not in known:
        log.info(f"nav: {nav} is not in docs/, left out of the navigation")
        return None
    return nav


def _nav_pages(nav: Any) -> set[str]:
    if isinstance(nav, list):
        return set().union(*(_nav_pages(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(_nav_pages(v) for v in nav.values()))
    return {nav} if isinstance(nav, str) else set()


# -- mkdocs events -------------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the README page and the copies of the repository files the pages link to; check the nav."""
    docs_dir = Path(config["docs_dir"])
    files.append(File.generated(config, README_PAGE, abs_src_path=str(ROOT / "README.md")))
    pending = [f.src_uri for f in files.documentation_pages()]
    while pending:  # a copied Markdown file is a page too, and may link to more files
        src_uri = pending.pop()
        before = set(_copies)
        _transform(_source_of(src_uri, docs_dir).read_text("utf-8"), src_uri, docs_dir, generate=False)
        for uri in sorted(set(_copies) - before):
            copy = File.generated(config, uri, abs_src_path=str(_copies[uri]))
            copy.inclusion = InclusionLevel.NOT_IN_NAV  # also files such as .ci/run
            files.append(copy)
            if copy.is_documentation_page():
                pending.append(uri)
    pages = {f.src_uri for f in files.documentation_pages()}
    config["nav"] = _prune(config["nav"], pages)
    for page in sorted(pages - _nav_pages(config["nav"])):
        if _in_docs(page):
            log.warning(f"{page} is not in the nav of mkdocs.yml: add it")
    return files


def _role(match: re.Match[str]) -> str:
    name = match.group(2).split(".")[-1] if match.group(1) else match.group(2)
    return f"<code>{name}</code>"


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Docstrings written for Sphinx: show ``:class:`~a.B``` as ``B``, in code."""
    return _ROLE.sub(_role, html)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the generated blocks and point links that leave docs/ at what the site publishes."""
    return _transform(markdown, page.file.src_uri, Path(config["docs_dir"]))
