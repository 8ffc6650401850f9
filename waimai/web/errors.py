"""Designed error pages: every person-facing URL answers a failure with a page in the user's language."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from waimai.core.deps import principal_from
from waimai.core.messages import N_
from waimai.web.i18n import gettext
from waimai.web.routes import TEMPLATES, _locale

# (title, what the user can do next) per status; the words are msgids in the catalogs.
_WORDS: dict[int, tuple[str, str]] = {
    400: (N_("The request could not be understood"), N_("Go back and try again.")),
    401: (N_("Please sign in"), N_("Sign in, then open the page again.")),
    403: (N_("This page is not for your account"), N_("Sign in with the right account, or go back to the start.")),
    404: (N_("Page not found"), N_("The address may be mistyped, or the page has moved. Start again from the home page.")),
    405: (N_("This page cannot be opened that way"), N_("Go back and use the page's own buttons.")),
    409: (N_("That changed in the meantime"), N_("Reload the page to see the latest state.")),
    413: (N_("That was too large"), N_("Send something smaller.")),
    422: (N_("Please check what you entered"), N_("Go back, correct the form and send it again.")),
    429: (N_("Too many attempts"), N_("Wait a minute, then try again.")),
    500: (N_("Something went wrong on our side"), N_("It was logged and we are on it. Try again in a moment.")),
    503: (N_("The service is busy or partly down"), N_("Try again in a minute; the status page shows what is happening.")),
}


def error_page(request: Request, status: int, message: str | None) -> HTMLResponse:
    """The error page for `status`; reads no table, so it still renders while the database is down."""
    loc = _locale(request)
    title, hint = _WORDS.get(status, _WORDS[500] if status >= 500 else _WORDS[400])
    try:
        me = principal_from(request)
    except Exception:  # noqa: BLE001 - a broken token must not break the error page
        me = None
    resp = TEMPLATES.TemplateResponse(request, "error.html", {
        "me": me, "locale": loc, "lang_attr": "zh-CN" if loc == "zh_CN" else "en", "banners": [], "unread": 0,
        "status_code": status, "title": gettext(title), "message": gettext(message) if message else None,
        "hint": gettext(hint)}, status_code=status)
    return resp
