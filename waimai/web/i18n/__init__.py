"""Translations through Babel: message catalogs in web/i18n/<locale>.po, zh-CN by default."""

from __future__ import annotations

import re

from waimai.core.i18n import I18N, LOCALES, current_locale, gettext, ngettext, translations  # noqa: F401 (re-exported)


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
