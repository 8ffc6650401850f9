"""Translations through Babel: message catalogs in web/i18n/<locale>.po, zh-CN by default."""

from __future__ import annotations

import contextvars
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

I18N = Path(__file__).resolve().parent
LOCALES = ("zh_CN", "en")
current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="zh_CN")


@lru_cache
def translations(locale: str) -> NullTranslations:
    """Compile the locale's .po in memory (no build step); English msgids need no catalog."""
    po = I18N / f"{locale}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


def negotiate(query: str | None, cookie: str | None, accept_language: str | None, default: str) -> str:
    for cand in (query, cookie):
        if cand in LOCALES:
            return cand  # type: ignore[return-value]
    if accept_language:
        first = accept_language.split(",")[0].strip().lower()
        if first.startswith("en"):
            return "en"
        if first.startswith("zh"):
            return "zh_CN"
    return default
