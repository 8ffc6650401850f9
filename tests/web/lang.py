"""One language per page: what a reader sees, less names (shops, dishes, buildings, people) and code."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import create_engine, text

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff01-\uff5e]")
# Two or more English words in a row is prose; a lone token (P1, SLA, ID, SMS) is not.
PROSE = re.compile(r"\b[A-Za-z][a-z]+(?:[ '-]+[A-Za-z][a-z]+)+\b")
SKIP = {"script", "style", "code", "noscript", "svg", "datalist", "option", "select"}


class _Visible(HTMLParser):
    """Visible text, leaving out scripts, code and anything marked lang= (unless `keep_lang`) or translate=no."""

    def __init__(self, keep_lang: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[bool] = []  # skipping?
        self.keep_lang = keep_lang

    VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "base", "col", "embed", "track"}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        a = dict(attrs)
        skip = (self.stack and self.stack[-1]) or tag in SKIP or ("lang" in a and not self.keep_lang) \
            or a.get("translate") == "no" \
            or "hidden" in a
        self.stack.append(bool(skip))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.out.append(data)


def visible_text(html: str, *, keep_lang: bool = False) -> str:
    """What a reader sees. `keep_lang` keeps what is marked with its own language too: a test that knows every
    text people wrote (and passes them as names) then finds the system's own words that were merely marked
    as another language instead of being translated."""
    body = html.split("<body", 1)[-1]
    p = _Visible(keep_lang)
    p.feed("<body" + body)
    return re.sub(r"\s+", " ", " ".join(p.out))


def names(database_url: str) -> list[str]:
    """Everything on a page that is a name or someone's words (data), not the interface's language."""
    eng = create_engine(database_url)
    out: set[str] = set()
    with eng.connect() as c:
        for sql in ("SELECT name FROM merchants", "SELECT description FROM merchants", "SELECT name FROM menu_items",
                    "SELECT name FROM menu_categories", "SELECT name FROM delivery_points", "SELECT name FROM users",
                    "SELECT name FROM riders", "SELECT name FROM zones", "SELECT name FROM campuses",
                    "SELECT name FROM campus_features"):
            out.update(r[0] for r in c.execute(text(sql)) if r[0])
        import json

        for (opts,) in c.execute(text("SELECT options FROM menu_items")):
            for g in (json.loads(opts) if isinstance(opts, str) else opts) or []:
                out.add(g["name"])
                out.update(ch["name"] for ch in g.get("choices", []))
    eng.dispose()
    parts = {p for n in out for p in n.split(" ") if p}
    return sorted(out | parts, key=len, reverse=True)


def strip_names(text_: str, known: list[str]) -> str:
    for n in known:
        text_ = text_.replace(n, " ")
    return text_


def foreign(text_: str, locale: str, known: list[str]) -> list[str]:
    """The pieces of `text_` in the other language: English prose on a zh page, Chinese on an en page."""
    rest = strip_names(text_, known)
    if locale == "en":
        return sorted({m.group(0) for m in re.finditer(r"\S*[\u3400-\u9fff]\S*", rest)})
    rest = re.sub(r"W\d{6,}\w*", " ", rest)  # order numbers
    return sorted({m.group(0) for m in PROSE.finditer(rest)})
