"""The customer pages as an installable web app: the manifest, the service worker and the offline page.

The service worker is served from the site root (`/sw.js`, scope `/`) as a same-origin script, so the
Content-Security-Policy (`script-src 'self'`, waimai/core/edge.py) lets it run without 'unsafe-inline'. It
keeps the app shell (style, script, icons, the offline page in both languages) and shows the offline page
in the page's language when a navigation finds no network; it also shows Web Push messages.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from waimai.web.i18n import LOCALES, current_locale, gettext
from waimai.web.routes import TEMPLATES, _locale

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent / "static"
THEME = "#b93d0c"  # --accent in static/app.css
BACKGROUND = "#f6f7f9"  # --bg


@router.get("/manifest.webmanifest")
def manifest(request: Request) -> Response:
    loc = _locale(request)
    body = {"name": gettext("Waimai"), "short_name": gettext("app.short_name"), "lang": "zh-CN" if loc == "zh_CN" else "en",
            "description": gettext("Order food on campus and follow it to your door."),
            "start_url": "/", "scope": "/", "display": "standalone", "theme_color": THEME,
            "background_color": BACKGROUND,
            "icons": [{"src": f"/static/icons/icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png",
                       "purpose": "any maskable"} for n in (192, 512)]}
    return JSONResponse(body, media_type="application/manifest+json",
                        headers={"Cache-Control": "no-cache", "Vary": "Cookie, Accept-Language"})


@router.get("/sw.js")
def service_worker() -> Response:
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"})


def _offline(request: Request, loc: str) -> HTMLResponse:
    current_locale.set(loc)
    return TEMPLATES.TemplateResponse(request, "offline.html", {"lang_attr": "zh-CN" if loc == "zh_CN" else "en"},
                                      headers={"Cache-Control": "no-cache"})


@router.get("/offline", response_class=HTMLResponse)
def offline_page(request: Request) -> HTMLResponse:
    """What the service worker shows when there is no network (in the reader's language)."""
    return _offline(request, _locale(request))


@router.get("/offline/{locale}", response_class=HTMLResponse)
def offline_page_in(request: Request, locale: str) -> HTMLResponse:
    """The same in a given language, for the service worker's cache (it cannot read the language cookie)."""
    return _offline(request, locale if locale in LOCALES else _locale(request))
