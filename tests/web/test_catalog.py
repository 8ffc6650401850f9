"""Issue 20, item 2: every user-facing string goes through Babel, and the catalogs keep up.

The msgids come from `pybabel extract` over the code and templates (babel.cfg), the same run as
`make messages`: a new string that nobody translated fails here, not on a user's screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from waimai.core.errors import Conflict, NotFound
from waimai.platform.ordering.state import Status
from waimai.web.i18n import I18N, current_locale, negotiate, say
from waimai.web.i18n.extract import extract

KEY = re.compile(r"^[a-z_]+\.[A-Za-z0-9_.<>]+$")  # `status.picked_up`: a key, worded in every locale
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")


def _done(m: object) -> bool:
    """Translated: a message's text, or every plural form of it, is filled in."""
    text = getattr(m, "string", None)
    return bool(text) and (all(text) if isinstance(text, tuple) else True)


def _po(locale: str) -> Catalog:
    with (I18N / f"{locale}.po").open("rb") as f:
        return read_po(f, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return extract(Path(tmp_path_factory.mktemp("i18n")) / "messages.pot")


def test_extraction_finds_templates_code_and_service_messages(extracted: Catalog) -> None:
    ids = {m.id for m in extracted if m.id}
    assert "Campus shops" in ids                          # a template
    assert "Enter a quantity from 1 to 99." in ids         # gettext() in a page handler
    assert "Phone number or password is wrong." in ids     # a service's failure message
    assert "status.picked_up" in ids                      # a key built at run time, listed in keys.py
    assert ("%(num)s rider on shift", "%(num)s riders on shift") in ids  # ngettext in a template
    assert not [i for i in ids if isinstance(i, str) and re.fullmatch(r"[a-z_]+\.", i)]  # no fragments


def test_every_message_is_translated_into_chinese(extracted: Catalog) -> None:
    zh = _po("zh_CN")
    missing = sorted(str(m.id) for m in extracted if m.id and not _done(zh.get(m.id)))
    assert not missing, f"untranslated in zh_CN.po (run `make messages`, then translate): {missing}"
    assert not [m.id for m in zh if m.id and m.fuzzy], "fuzzy entries are not used by gettext"


def test_every_key_is_worded_in_english(extracted: Catalog) -> None:
    en = _po("en")
    missing = sorted(str(m.id) for m in extracted
                     if isinstance(m.id, str) and KEY.match(m.id) and not _done(en.get(m.id)))
    assert not missing, f"keys without English words in en.po: {missing}"


def test_translations_keep_their_placeholders() -> None:
    for loc in ("zh_CN", "en"):
        for m in _po(loc):
            if isinstance(m.id, str) and m.string and not KEY.match(m.id):
                assert sorted(PLACEHOLDER.findall(m.id)) == sorted(PLACEHOLDER.findall(str(m.string))), (loc, m.id)


def test_every_order_status_has_its_words() -> None:
    for loc in ("zh_CN", "en"):
        po = _po(loc)
        for st in Status:
            assert po.get(f"status.{st.value}") and po.get(f"status.{st.value}").string, (loc, st)


@pytest.mark.parametrize(("header", "want"), [
    ("ja,en;q=0.8", "en"), ("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("fr;q=0.9, zh-TW;q=0.8, en;q=0.5", "zh_CN"), ("en;q=0.2, zh;q=0.7", "zh_CN"), ("ja", "zh_CN"),
    ("en;q=0, zh;q=0.1", "zh_CN"), ("*", "zh_CN"), ("", "zh_CN"), ("garbage;;q=x", "zh_CN"),
])
def test_accept_language_weighs_q_values(header: str, want: str) -> None:
    assert negotiate(None, None, header, "zh_CN") == want


def test_query_and_cookie_beat_the_header() -> None:
    assert negotiate("en", None, "zh-CN", "zh_CN") == "en"
    assert negotiate(None, "zh_CN", "en", "en") == "zh_CN"


def test_service_failures_are_worded_by_code_in_the_page_language() -> None:
    exc = Conflict("Order W1 is picked_up; it cannot become cancelled.", code="illegal_transition",
                   details={"current": "picked_up", "requested": "cancelled"})
    token = current_locale.set("zh_CN")
    try:
        zh = say(exc)
        assert "配送中" in zh and "picked_up" not in zh and not re.search(r"[A-Za-z]{3,}", zh)
        # An English message with no catalog entry and no code's words: plain words for its status, in Chinese.
        assert not re.search(r"[A-Za-z]{3,}", say(NotFound("Merchant 77 does not exist.")))
        current_locale.set("en")
        assert "On the way" in say(exc) and "picked_up" not in say(exc)
    finally:
        current_locale.reset(token)
