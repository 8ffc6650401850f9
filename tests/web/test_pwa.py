"""The customer pages as an installable web app: manifest, service worker, offline page, push switch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, make_settings
from waimai.app import create_app


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c


def test_manifest_names_the_app_in_the_readers_language(web: TestClient) -> None:
    r = web.get("/manifest.webmanifest")
    assert r.status_code == 200 and r.headers["content-type"] == "application/manifest+json"
    m = r.json()
    assert (m["name"], m["short_name"], m["lang"]) == ("校园外卖", "外卖", "zh-CN")
    assert m["start_url"] == "/" and m["scope"] == "/" and m["display"] == "standalone"
    assert m["theme_color"] == "#b93d0c"
    assert [i["sizes"] for i in m["icons"]] == ["192x192", "512x512"]
    for icon in m["icons"]:
        img = web.get(icon["src"])
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        assert img.content[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(img.content[16:20], "big"), int.from_bytes(img.content[20:24], "big")
        assert f"{width}x{height}" == icon["sizes"]
    en = web.get("/manifest.webmanifest", headers={"Accept-Language": "en"}).json()
    assert (en["short_name"], en["lang"]) == ("Waimai", "en")


def test_service_worker_is_a_same_origin_script_at_the_root(web: TestClient) -> None:
    r = web.get("/sw.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["service-worker-allowed"] == "/"
    assert "addEventListener(\"push\"" in r.text and "/offline/" in r.text
    # The page's policy lets it run without 'unsafe-inline' (same origin, manifest from us too).
    csp = web.get("/").headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "manifest-src 'self'" in csp
    # Everything it keeps for offline use is there.
    for path in ("/static/app.css", "/static/app.js", "/offline/zh_CN", "/offline/en"):
        assert web.get(path).status_code == 200, path


def test_offline_page_in_both_languages(web: TestClient) -> None:
    zh = web.get("/offline/zh_CN")
    assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text
    assert "网络已断开" in zh.text and "重试" in zh.text and "You are offline" not in zh.text
    en = web.get("/offline/en")
    assert '<html lang="en">' in en.text and "You are offline" in en.text and "网络已断开" not in en.text
    assert "You are offline" in web.get("/offline", headers={"Accept-Language": "en-US"}).text
    assert "网络已断开" in web.get("/offline").text
    assert "set-cookie" not in en.headers  # the service worker's copies do not change the reader's language


def test_customer_pages_link_the_manifest_and_offer_push(web: TestClient) -> None:
    api = Api(web)
    web.cookies.set("waimai_token", api.token("customer"))
    page = web.get("/orders").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page and 'data-sw="1"' in page
    assert 'id="push" hidden' in page and "推送通知" in page and "/static/app.js" in page
    en = web.get("/orders?lang=en").text
    assert "Push notifications" in en and 'data-turn-on="Turn on"' in en
    web.cookies.clear()
    web.cookies.set("waimai_token", api.token("ops"))
    assert 'data-sw="1"' not in web.get("/ops").text  # the console does not install the customer app
