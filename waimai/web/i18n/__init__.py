"""Translations through Babel: message catalogs in web/i18n/<locale>.po, zh-CN by default."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from waimai.core.i18n import I18N, LOCALES, current_locale, gettext, ngettext, translations  # noqa: F401 (re-exported)
from waimai.core.messages import Msg, fill

_PROSE = re.compile(r"[A-Za-z][a-z]+(?:[ '-]+[A-Za-z][a-z]+)+")  # two English words in a row


def _as_written(text: str, html: bool) -> str:
    """A value someone wrote (a name, a reason, an alert rule's summary), shown as written; on a page it says
    which language it is in when that is not the page's."""
    if not html:
        return text
    other = ("zh-CN" if _CJK.search(text) else None) if current_locale.get() == "en" else (
        "en" if _PROSE.search(text) and not _CJK.search(text) else None)
    return Markup('<span lang="{}">{}</span>').format(other, text) if other else escape(text)


def words(value: Any, *, html: bool = False) -> str:
    """A system-written sentence in the page's language: a `msg` (or its stored `as_data` form) through the
    catalog, its values worded the same way; lists of them joined with the page's semicolon; anything else as it is.
    With `html`, Markup in which the values people wrote carry their own `lang` (see `_as_written`)."""
    if isinstance(value, list | tuple):
        parts = [words(v, html=html) for v in value]
        sep = "；" if current_locale.get() == "zh_CN" else "; "
        return escape(sep).join(parts) if html else sep.join(parts)
    if isinstance(value, Msg):
        msgid, values = value.msgid, value.values
    elif isinstance(value, dict) and isinstance(value.get("msgid"), str):
        msgid, values = value["msgid"], value.get("values") or {}
    elif isinstance(value, dict) and "en" in value and "zh" in value:  # a text written in both languages
        return _as_written(str(value["en"] if current_locale.get() == "en" else value["zh"]), html)
    else:
        return _as_written("" if value is None else str(value), html)
    said = {k: words(v, html=html) for k, v in values.items()}
    for text in (gettext(msgid), msgid):  # a translation that lost a place: the English, never a 500
        try:
            return fill(escape(text) if html else text, said)  # Markup % escapes what is not Markup already
        except (KeyError, TypeError, ValueError):
            continue
    return escape(msgid) if html else msgid


def accept_languages(header: str) -> list[str]:
    """The Accept-Language tags in order of preference (RFC 9110 q-values; q=0 means "not this one")."""
    ranked: list[tuple[float, int, str]] = []
    for pos, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, pos, tag.strip().lower()))
    return [t for _q, _p, t in sorted(ranked)]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None, default: str) -> str:
    """The page's one language: ?lang=, then the cookie, then the best Accept-Language match we have."""
    for cand in (query, cookie):
        if cand in LOCALES:
            return cand  # type: ignore[return-value]
    for tag in accept_languages(accept_language or ""):
        if tag == "*":
            return default
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh_CN"
    return default


_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{3,}")


def say(exc: object) -> str:
    """A service failure in the user's language, never the service's English on a Chinese page:
    the message itself when the catalog has it; else the code's msgid (`error.<code>`, filled from the
    failure's details); else, on a non-English page, the status's plain words (`error.http.<status>`)."""
    message = str(getattr(exc, "message", exc))
    text = gettext(message)
    if text != message or (current_locale.get() == "zh_CN" and _CJK.search(message) and not _LATIN.search(message)):
        return text  # translated, or already worded in Chinese by the page that raised it
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    key = f"error.{code}"
    if code and (by_code := gettext(key)) != key:
        params = {k: _word(k, v) for k, v in details.items()} if isinstance(details, dict) else {}
        try:
            return by_code % params if "%(" in by_code else by_code
        except (KeyError, TypeError, ValueError):
            pass
    if current_locale.get() == "en":
        return message
    status = getattr(exc, "status", 400)
    generic = gettext(f"error.http.{status}")
    return generic if generic != f"error.http.{status}" else gettext("error.http.400")


def _word(key: str, value: object) -> object:
    """Status values inside details are shown by their translated label, never as `picked_up`."""
    if key in ("current", "requested", "status") and isinstance(value, str):
        return gettext(f"status.{value}")
    return value
