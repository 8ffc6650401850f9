"""Issue 20, item 2: one language per page. Every page of every role, rendered in zh-CN and in English,
shows no English prose on the Chinese page and no Chinese on the English one (names excepted).

The ops pages are read with an incident that has lived a little (acknowledged, roles, checklist, a status
update, a severity change, a note, a switch flipped and a runbook run, a ticket linked and resolved, a
review and an action item), the runbooks page after a dry run and with the remediation policies' history,
the root-cause report and the satisfaction page. What the system itself wrote there (timeline lines, dry-run
lines, what a runbook did) must be in the reader's language, not English marked `lang="en"`: those pages
are read with what is marked kept, everything people typed in this test counting as a name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.web.lang import foreign, names, strip_names, visible_text
from waimai.app import create_app

PAGES = {
    None: ["/", "/shops/1", "/login", "/status", "/no/such/page", "/orders/abc"],
    "13800000001": ["/", "/shops/1", "/cart", "/orders", "/orders/{oid}", "/orders/{oid}/problem", "/tickets",
                    "/tickets/{tid}", "/notices"],
    "13800000002": ["/merchant"],
    "13800000003": ["/rider", "/rider/earnings"],
    "13800000004": ["/support", "/tickets", "/tickets/{tid}", "/support/orders/{oid}"],
    "13800000009": ["/ops", "/ops/alerts", "/ops/alerts/rules", "/ops/incidents", "/ops/runbooks", "/ops/intake",
                    "/ops/payroll", "/ops/payments", "/ops/logs", "/ops/satisfaction", "/ops/backups",
                    "/ops/dispatch", "/ops/switches", "/ops/settings", "/ops/events", "/orders/{oid}",
                    "/ops/incidents/1", "/ops/incidents/1/report", "/tickets/{tid}", "{plan}"],
}
# What people typed in this test: on a page it is theirs, in the language they wrote it in.
TYPED = ["午高峰下单失败", "已联系商家", "张三", "没有卤蛋", "商家出餐慢", "增加出餐超时告警", "李四", "中文"]
# Public component ids (sop.yml): pages name components by their names, never by these.
COMPONENT_IDS = re.compile(r"(?<![\w.])(ordering|payment|delivery|notifications|merchant_console)(?![\w.])")


@pytest.fixture
def site(sqlite_url: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_app(make_settings(sqlite_url), background=False)) as c:
        yield c, sqlite_url


def _login(c: TestClient, phone: str) -> None:
    c.cookies.clear()
    r = c.post("/login", data={"phone": phone, "password": "waimai-demo"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]


def _bearer(c: TestClient, phone: str) -> dict[str, str]:
    t = c.post("/api/v1/auth/login", json={"phone": phone, "password": "waimai-demo"}).json()
    return {"Authorization": f"Bearer {t['access_token']}"}


def _place_and_cancel(c: TestClient) -> str:
    """An order that went somewhere (placed, then cancelled by the customer): its page has a history."""
    _login(c, "13800000001")
    c.post("/cart/add", data={"item_id": 5, "quantity": "1"})
    idem = re.search(r'name="idem" value="([^"]+)"', c.get("/cart").text).group(1)  # type: ignore[union-attr]
    r = c.post("/checkout", data={"delivery_point_id": 1, "payment_method": "cod", "idem": idem},
               follow_redirects=False)
    oid = r.headers["location"].split("/orders/")[1].split("?")[0]
    c.post(f"/orders/{oid}/cancel")
    return oid


FLASH = re.compile(r'<div class="flash (?:ok|err)" role="(?:status|alert)">(.*?)</div>', re.S)


def _act(c: TestClient, url: str, **kw: object) -> None:
    """A console form, posted from a Chinese page: it worked, and what the page says about it is in Chinese."""
    r = c.post(url, **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, (url, r.status_code)
    said = " ".join(FLASH.findall(r.text))
    assert 'class="flash err"' not in r.text, (url, said)
    assert not foreign(said, "zh_CN", []), (url, said)


def _incident_that_lived(c: TestClient, oid: str) -> str:
    """Incident #1 with a timeline of every kind the console writes, and a complaint ticket linked to it."""
    _login(c, "13800000009")
    _act(c, "/ops/incidents", data={"title": "午高峰下单失败", "severity": "P2", "components": ["ordering", "payment"],
                                   "public": "1"})
    _act(c, "/ops/incidents/1/note", data={"text": "已联系商家"})
    _act(c, "/ops/incidents/1/ack")
    _act(c, "/ops/incidents/1/roles", data={"commander": "张三"})
    item = re.search(r'action="/ops/incidents/1/check/(\w+)"', c.get("/ops/incidents/1").text)
    assert item, "the SOP checklist has items"
    _act(c, f"/ops/incidents/1/check/{item.group(1)}", data={"done": "1"})
    _act(c, "/ops/incidents/1/update", data={"status": "identified"})  # no text: the standard one, both languages
    ops = _bearer(c, "13800000009")
    assert c.patch("/api/v1/incidents/1", headers=ops, json={"severity": "P1"}).status_code == 200
    _act(c, "/ops/runbooks/switch_to_cod", data={"action": "run"})  # a switch flipped, a runbook on the timeline
    _act(c, "/ops/runbooks/rebuild_caches", data={"action": "run"})
    c.app.state.events.run_once()  # type: ignore[attr-defined]  # the switch's line reaches the timeline
    _act(c, "/ops/incidents/1/review", data={"whys": ["商家出餐慢"], "root_cause": "商家出餐慢"})
    _act(c, "/ops/incidents/1/actions", data={"text": "增加出餐超时告警", "owner": "李四"})
    # The remediation policies' history: one that ran (the database was slow), one skipped in its cooldown.
    rem = c.app.state.remediation  # type: ignore[attr-defined]
    slow = SimpleNamespace(name="DatabaseSlow", status="firing")
    rem.on_alerts([(slow, None)])
    rem.on_alerts([])
    rem.on_alerts([(slow, None)])
    assert [h for h in rem.history if "ran" in h] and [h for h in rem.history if "skipped" in h], rem.history
    # A complaint on the order, linked to the incident by ops, taken and resolved by support.
    _login(c, "13800000001")
    r = c.post(f"/orders/{oid}/problem", data={"category": "missing_item", "description": "没有卤蛋"},
               follow_redirects=False)
    tid = r.headers["location"].split("/tickets/")[1].split("?")[0]
    assert c.put(f"/api/v1/tickets/{tid}/incident", headers=ops, json={"incident_id": 1}).status_code == 200
    _login(c, "13800000004")
    _act(c, f"/tickets/{tid}/take")
    _act(c, f"/tickets/{tid}/resolve", data={"resolution": "no_action"})
    return tid


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_page_speaks_one_language(site: tuple[TestClient, str], locale: str) -> None:
    c, url = site
    oid = _place_and_cancel(c)
    c.post("/cart/add", data={"item_id": 5, "quantity": "1"})  # a cart to look at
    tid = _incident_that_lived(c, oid)
    # The alert rules' summaries are the rules' authors' words (configuration, like names).
    rules = {r.summary for g in c.app.state.alerting.rules.groups for r in g.rules}  # type: ignore[attr-defined]
    known = sorted(set(names(url)) | set(TYPED) | rules, key=len, reverse=True)
    bad: dict[str, list[str]] = {}
    for phone, pages in PAGES.items():
        if phone:
            _login(c, phone)
            if phone == "13800000001":
                c.post("/cart/add", data={"item_id": 5, "quantity": "1"})
        else:
            c.cookies.clear()
        for path in pages:
            if path == "{plan}":  # a dry run, asked for from a page in this language
                r = c.post("/ops/runbooks/pause_merchant", params={"lang": locale},
                           data={"action": "plan", "p_merchant_id": "1"}, follow_redirects=False)
                assert r.status_code == 303 and "plan=" in r.headers["location"], r.headers
                path = r.headers["location"].split("#")[0]
            r = c.get(path.replace("{oid}", oid).replace("{tid}", tid), params={"lang": locale})
            assert r.status_code in (200, 404), (path, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), path
            ops = phone == "13800000009" or path.startswith("/tickets/")
            text = visible_text(r.text, keep_lang=ops)
            found = foreign(text, locale, known)
            if ops and locale == "zh_CN" and (ids := sorted(set(COMPONENT_IDS.findall(strip_names(text, known))))):
                found.append(f"component ids {ids}")
            if found:
                bad[f"{phone} {path[:40]}"] = found
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)


def test_the_dry_run_and_the_timeline_say_what_they_did(site: tuple[TestClient, str]) -> None:
    """The particular lines, in Chinese: a dry run's plan, a runbook's line on the timeline, the switch it
    flipped, the remediation history, the report's headings and the satisfaction page's component names."""
    c, _url = site
    oid = _place_and_cancel(c)
    tid = _incident_that_lived(c, oid)
    _login(c, "13800000009")
    history = c.get(f"/tickets/{tid}").text.split('class="timeline"', 1)[1].split("</ul>", 1)[0]
    assert "处理中" in history and "无需处理" in history and "事件 #1" in history, history
    assert not re.search(r"in_progress|no_action|incident #", history), history
    r = c.post("/ops/runbooks/switch_to_cod", data={"action": "plan"})
    plan = r.text.split("data-plan", 1)[1].split("</section>", 1)[0]
    assert "开启开关 payment.cod_only" in plan and "新订单只提供货到付款" in plan, plan
    page = c.get("/ops/incidents/1").text
    assert "预案脚本 rebuild_caches 已执行：缓存已清空" in page and "开关 payment.cod_only 开启" in page
    assert "指挥官：张三" in page and "级别 P2 → P1" in page and "工单 #" in page
    runs = c.get("/ops/runbooks").text
    assert "已执行：缓存已清空；下次读取时重新填充" in runs and "已跳过：冷却中（900 秒）" in runs
    report = c.get("/ops/incidents/1/report").text
    assert "<h2>时间线</h2>" in report and "<h2>影响</h2>" in report and "组件：下单、在线支付" in report
    overview = c.get("/ops").text  # the probes by name, not `payment_gateway`
    assert 'data-probe="database">数据库<' in overview and 'data-probe="payment_gateway">支付网关<' in overview
    assert "<strong>美团</strong>" in c.get("/ops/intake").text
    sat = c.get("/ops/satisfaction").text
    assert "下单、在线支付" in sat
    en = c.get("/ops/satisfaction", params={"lang": "en"}).text
    assert "Ordering, Online payment" in en
    # The API and files keep the English words.
    md = c.get("/api/v1/incidents/1/report.md").text
    assert "## Timeline" in md and r"runbook rebuild\_caches done\: caches dropped" in md
