"""Source hygiene that no linter checks: a comment must not swallow code on a continued line.

A `# noqa: …` pasted into the middle of an argument list turns the rest of that physical line into
comment text; inside brackets Python goes on happily, so the call silently loses arguments (this is
how `bench/tracking_fanout.py` lost `"waimai.app:create_app", "--factory", "--port",`). Inside
brackets, a comment holding string literals separated by commas is almost always such code.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_IN_COMMENT = re.compile(r"""(["'])[^"'\n]*\1\s*,\s*\S""")


def swallowed(source: str) -> list[tuple[int, str]]:
    """(line, comment) for each comment inside brackets that holds comma-separated string literals."""
    found, depth = [], 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.COMMENT and depth > 0 and CODE_IN_COMMENT.search(tok.string):
            found.append((tok.start[0], tok.string))
    return found


def test_the_check_finds_the_bug_it_is_for() -> None:
    broken = (
        'cmd = [sys.executable, "-m", "uvicorn",  # noqa: S603 - started once "waimai.app:create_app", "--port",\n'
        '       str(port)]\n'
    )
    fixed = 'cmd = [sys.executable, "-m", "uvicorn",  # noqa: S603\n       "waimai.app:create_app", str(port)]\n'
    assert [line for line, _ in swallowed(broken)] == [1]
    assert swallowed(fixed) == []
    assert swallowed('x = f(1)  # says "a", "b" but outside brackets\n') == []


def test_no_comment_swallows_code() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for folder in ("waimai", "bench", "tests", "drills")
        if (ROOT / folder).is_dir()
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in swallowed(path.read_text(encoding="utf-8"))
    ]
    assert not bad, "comments that look like swallowed code:\n" + "\n".join(bad)
