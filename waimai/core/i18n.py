"""The message catalogs (Babel .po files kept with the pages in waimai/web/i18n, the source of truth),
compiled in memory, and the current request's locale. In core because every layer words messages for
people — a push payload, an SMS, a page — while negotiating the language of a request stays in web."""

from __future__ import annotations

import contextvars
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

I18N = Path(__file__).resolve().parent.parent / "web" / "i18n"
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
