"""Item 9: what customers and staff write stays text in the incident report (no live image, link or tag)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from tests.conftest import Api, make_settings
from tests.security.conftest import cookie_login
from waimai.app import create_app
from waimai.firewall.incidents.report import md_text

BEACON = "![x](http://evil.example/beacon.png)"
LINK = "[退款点这里](http://evil.example/phish)"
TAG = "<img src=http://evil.example/t.png>"


def render(text: str) -> str:
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(md_text(text))


def test_md_text_renders_as_the_same_text() -> None:
    for text in (BEACON, LINK, TAG, "| a | b |", "**bold** _em_ `code` # h1", "1. list\n- item", "a\\b"):
        html = render(text)
        assert "<img" not in html and "<a " not in html and "<strong>" not in html and "<code>" not in html
        assert "<table" not in html and "<h1>" not in html and "<ol>" not in html
    assert render("汤洒了 (第二次) — 138****0001").strip() == "<p>汤洒了 (第二次) — 138****0001</p>"


def test_ticket_text_is_text_in_the_report_pages(sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        api = Api(c)
        oid = api.place().json()["id"]  # type: ignore[attr-defined]
        t = c.post("/api/v1/tickets", json={"order_id": oid, "category": "cold",
                                            "description": f"{BEACON} {LINK} {TAG}"}, headers=api.h("customer"))
        assert t.status_code == 201, t.text
        inc = c.post("/api/v1/incidents", json={"title": f"Cold food {BEACON}", "severity": "P3", "components": []},
                     headers=api.h("ops")).json()
        assert c.put(f"/api/v1/tickets/{t.json()['id']}/incident", json={"incident_id": inc["id"]},
                     headers=api.h("ops")).status_code == 200
        c.post(f"/api/v1/incidents/{inc['id']}/notes", json={"text": LINK}, headers=api.h("ops"))
        standalone = c.get(f"/api/v1/incidents/{inc['id']}/report.html", headers=api.h("ops"))
        cookie_login(c, "ops")
        page = c.get(f"/ops/incidents/{inc['id']}/report")
        for html in (standalone.text, page.text):
            assert "evil.example/beacon.png" in html  # the customer's words are there …
            assert 'src="http://evil.example' not in html and 'href="http://evil.example' not in html  # … inert
            assert "<img src=http://evil" not in html
