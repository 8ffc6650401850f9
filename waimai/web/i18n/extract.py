"""Message extraction with pybabel over the code and the templates (babel.cfg), shared by
`make messages` and the catalog test so both see exactly the same msgids."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from waimai.web.i18n import I18N, LOCALES

ROOT = I18N.parents[2]
# gettext and friends, N_ and msg (a msgid defined away from the page, msg with values), and the service failures: their
# literal message is a msgid the page translates (a failure with a code uses `error.<code>` first).
KEYWORDS = ("_", "gettext", "ngettext:1,2", "N_", "msg", "AppError", "NotFound", "Forbidden", "Unauthorized", "Conflict",
            "Unprocessable", "TooManyRequests", "ServiceUnavailable", "CodOnly", "GatewayUnavailable",
            "IllegalTransition", "MerchantClosed", "OutOfStock", "TooLarge", "BackupError", "BackupBusy",
            "BackupNotFound", "BackupRefused", "ChecksumMismatch", "KeyMissing", "RestoreFailed", "TargetError")


def extract_python_whole(fileobj: IO[bytes], keywords: Iterable[str], comment_tags: Any,
                         options: Mapping[str, Any]) -> Iterator[tuple[int, str, str | tuple[str, ...], list[str]]]:
    """Babel's Python extraction, whole messages only: a call whose message is built at run time
    (an f-string, `"status." + value`) names no msgid, so it yields nothing instead of the literal
    fragments Babel's token-based extractor would pick out of it."""
    names = set(keywords)
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else (
            node.func.attr if isinstance(node.func, ast.Attribute) else None)
        if name not in names or not node.args:
            continue
        count = 2 if name == "ngettext" else 1
        args = node.args[:count]
        if len(args) < count or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
            continue
        values = tuple(a.value for a in args)  # type: ignore[attr-defined]
        yield node.lineno, name, values if count > 1 else values[0], []


def extract(pot: Path) -> Catalog:
    """Run `pybabel extract -F babel.cfg` over the tree into `pot` and read it back."""
    args = ["pybabel", "--quiet", "extract", "-F", str(ROOT / "babel.cfg"), "--no-location", "--sort-output",
            "--no-default-keywords", "--project", "waimai", "-o", str(pot)]
    for k in KEYWORDS:
        args += ["-k", k]
    CommandLineInterface().run([*args, str(ROOT)])
    with pot.open("rb") as f:
        return read_po(f)


def update_catalogs() -> None:
    """New msgids join each locale's .po untranslated (the catalog test fails until someone translates them)."""
    pot = I18N / "messages.pot"
    try:
        extract(pot)
        for loc in LOCALES:
            CommandLineInterface().run(["pybabel", "--quiet", "update", "-i", str(pot), "-o", str(I18N / f"{loc}.po"),
                                        "-l", loc, "--no-fuzzy-matching", "--ignore-obsolete"])
    finally:
        pot.unlink(missing_ok=True)
