"""Swagger UI and ReDoc for /api/v1, served from the vendored npm files (no CDN: works offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from waimai.core.opsonly import require_docs_reader

SWAGGER = "/static/vendor/swagger-ui-dist-5.35.0"
REDOC = "/static/vendor/redoc-2.5.4"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    require_docs_reader(request)
    return get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json",
                               title=f"{request.app.title} API", swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    require_docs_reader(request)
    return get_redoc_html(openapi_url=request.app.openapi_url or "/openapi.json", title=f"{request.app.title} API",
                          redoc_js_url=f"{REDOC}/redoc.standalone.js", redoc_favicon_url=f"{SWAGGER}/favicon-32x32.png",
                          with_google_fonts=False)
