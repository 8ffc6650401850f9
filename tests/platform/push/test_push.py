"""Web Push (issue 20, "Push to the phone"): subscriptions through the API, order updates and incident
notices delivered over real HTTP to the push-service stand-in, which checks VAPID and decrypts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from py_vapid import Vapid
from pywebpush import WebPusher
from sqlalchemy import select

from tests.conftest import Api, make_settings
from tests.servers import serve
from waimai.app import create_app
from waimai.config import DEMO_VAPID_PRIVATE_KEY, Settings
from waimai.platform.push.models import PushMessage, PushSubscription
from waimai.platform.push.standins import create_push_standin
from waimai.platform.push.vapid import generate


@pytest.fixture
def standin() -> Iterator[tuple[str, Any]]:
    app = create_push_standin()
    with serve(app) as url:
        yield url, app.state.standin


def browser_subscription(base: str, server_key: str | None) -> dict[str, Any]:
    """What a browser's pushManager.subscribe() gives the page."""
    r = httpx.post(f"{base}/_standin/subscriptions", json={"application_server_key": server_key})
    assert r.status_code == 201, r.text
    return r.json()


def subscribe(c: TestClient, headers: dict[str, str], base: str, locale: str = "zh_CN") -> dict[str, Any]:
    key = c.get("/api/v1/push/public-key", headers=headers).json()["public_key"]
    sub = browser_subscription(base, key)
    body = {"endpoint": sub["endpoint"], "expirationTime": None, "keys": sub["keys"], "locale": locale}
    r = c.post("/api/v1/push/subscribe", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return sub


def accept(c: TestClient, api: Api, order_id: int) -> None:
    r = c.post(f"/api/v1/orders/{order_id}/accept", headers=api.h("merchant"))
    assert r.status_code == 200, r.text


def test_order_update_reaches_each_browser_decrypted_in_its_language(
        db_url: str, standin: tuple[str, Any]) -> None:
    base, state = standin
    app = create_app(make_settings(db_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        zh = subscribe(c, api.h("customer"), base, "zh-CN")
        en = subscribe(c, api.h("customer"), base, "en")
        listed = c.get("/api/v1/push/subscriptions", headers=api.h("customer")).json()["subscriptions"]
        assert [s["locale"] for s in listed] == ["zh_CN", "en"] and listed[0]["service"] == "127.0.0.1"
        assert "auth" not in str(listed) and "/push/" not in str(listed)  # no secrets, no capability URLs
        order = api.place().json()
        assert app.state.push_sender.run_once()["sent"] == 0  # placing it owes nothing: the customer did it
        accept(c, api, order["id"])
        assert app.state.push_sender.run_once() == {"sent": 2, "retry": 0, "wait": 0, "failed": 0, "dead": 0,
                                                      "gone": 0}
        got = {a["subscription"]: a for a in state.accepted}
        assert set(got) == {zh["id"], en["id"]} and state.rejected == []
        zh_msg, en_msg = got[zh["id"]]["payload"], got[en["id"]]["payload"]
        number = order["number"]
        assert zh_msg["title"] == "外卖 · 商家已接单"
        assert zh_msg["body"] == f"兰州拉面 Lanzhou Noodles 已接单（订单 {number}）。"
        assert en_msg["title"] == "Waimai · Accepted"
        assert en_msg["body"] == f"兰州拉面 Lanzhou Noodles accepted your order {number}."
        assert zh_msg["url"] == en_msg["url"] == f"/orders/{order['id']}"
        assert got[zh["id"]]["ttl"] == 3600 and got[zh["id"]]["sub"] == "mailto:ops@waimai.invalid"
        assert app.state.push_sender.run_once()["sent"] == 0  # nothing twice
        with app.state.db.read_session() as db:
            rows = list(db.scalars(select(PushMessage)))
        assert [r.state for r in rows] == ["sent", "sent"] and all(r.attempts == 1 for r in rows)


def test_a_bad_vapid_signature_is_refused_by_the_standin(standin: tuple[str, Any]) -> None:
    """The stand-in really checks: the same encrypted message passes with the true token and is refused
    with a forged signature, an expiry too far ahead, or no authorization."""
    base, state = standin
    private, public = generate()
    sub = browser_subscription(base, public)
    data = WebPusher({"endpoint": sub["endpoint"], "keys": sub["keys"]}).encode(b'{"title": "t"}', "aes128gcm")
    body = data["body"]

    def post(claims: dict[str, Any], tamper: bool = False, auth: bool = True) -> httpx.Response:
        headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
        if auth:
            signed = Vapid.from_string(private_key=private).sign(dict(claims))
            value = signed["Authorization"]
            if tamper:  # flip the signature's first character: same key, same claims, wrong signature
                t = value.split("t=", 1)[1].split(",", 1)[0]
                head, payload, sig = t.split(".")
                value = value.replace(t, f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}")
            headers["Authorization"] = value
        return httpx.post(sub["endpoint"], content=body, headers=headers)

    good = {"aud": base, "exp": int(time.time()) + 3600, "sub": "mailto:ops@example.com"}
    assert post(good, tamper=True).status_code == 403
    assert "vapid token invalid" in state.rejected[-1]["reason"]
    assert post({**good, "exp": int(time.time()) + 25 * 3600}).status_code == 403
    assert post({**good, "aud": "https://push.example.com"}).status_code == 403
    assert post(good, auth=False).status_code == 401
    other_private, _ = generate()
    private, keep = other_private, private  # a key other than the one the browser subscribed with
    assert post(good).status_code == 403 and "not the key" in state.rejected[-1]["reason"]
    private = keep
    assert state.accepted == []
    r = post(good)
    assert r.status_code == 201 and state.accepted[0]["payload"] == {"title": "t"}


def test_gone_subscription_is_deleted_and_retries_follow_5xx_and_429(sqlite_url: str,
                                                                     standin: tuple[str, Any]) -> None:
    base, state = standin
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        sub = subscribe(c, api.h("customer"), base)
        order = api.place().json()
        state.fail_next(1, 503)  # one 503: stamina retries at once and the message goes
        accept(c, api, order["id"])
        assert app.state.push_sender.run_once()["sent"] == 1
        assert len(state.request_times) == 2 and len(state.accepted) == 1
        state.fail_next(10, 429, retry_after=1)  # the push service keeps refusing: the outbox waits
        for step in ("preparing", "ready"):  # the kitchen starts (no push for that), then it is ready
            assert c.post(f"/api/v1/orders/{order['id']}/{step}", headers=api.h("merchant")).status_code == 200
        out = app.state.push_sender.run_once()
        assert out["retry"] == 1 and out["sent"] == 0, out
        with app.state.db.read_session() as db:
            waiting = db.scalar(select(PushMessage).where(PushMessage.state == "pending"))
            assert waiting is not None and waiting.attempts == 1 and "429" in (waiting.last_error or "")
        state.failures.clear()
        # The browser dropped the subscription: 410 Gone deletes it and what it was still owed.
        httpx.post(f"{base}/_standin/subscriptions/{sub['id']}/expire")
        with app.state.db.session() as db:
            for m in db.scalars(select(PushMessage).where(PushMessage.state == "pending")):
                m.next_attempt_at = m.created_at
            db.commit()
        assert app.state.push_sender.run_once()["gone"] == 1
        with app.state.db.read_session() as db:
            assert db.scalar(select(PushSubscription)) is None
            assert db.scalar(select(PushMessage).where(PushMessage.state == "pending")) is None
        assert state.rejected[-1]["status"] == 410


def test_subscriptions_belong_to_their_user_and_are_checked(sqlite_url: str, standin: tuple[str, Any]) -> None:
    base, _state = standin
    app = create_app(make_settings(sqlite_url, push_subscriptions_per_user=2), background=False)
    with TestClient(app) as c:
        api = Api(c)
        mine = subscribe(c, api.h("customer"), base)
        body = {"endpoint": mine["endpoint"], "keys": mine["keys"]}
        # Someone else can neither remove it nor take it over.
        r = c.post("/api/v1/push/unsubscribe", json={"endpoint": mine["endpoint"]}, headers=api.h("rider"))
        assert r.status_code == 404
        assert c.post("/api/v1/push/subscribe", json=body, headers=api.h("rider")).status_code == 409
        assert c.get("/api/v1/push/subscriptions", headers=api.h("rider")).json()["subscriptions"] == []
        with app.state.db.read_session() as db:
            assert db.scalar(select(PushSubscription.user_id)) is not None
        # Without signing in: nothing.
        assert c.get("/api/v1/push/public-key").status_code == 401
        assert c.post("/api/v1/push/subscribe", json=body).status_code == 401
        # Input: https endpoints of named hosts only (http only to 127.0.0.1 outside production), real keys.
        for endpoint in ("http://push.example.com/x", "https://10.0.0.7/push/x", "https://localhost/push/x",
                         "https://user:pw@push.example.com/x", "ftp://push.example.com/x", "https://intranet/x"):
            r = c.post("/api/v1/push/subscribe", json={**body, "endpoint": endpoint}, headers=api.h("customer"))
            assert r.status_code == 422 and r.json()["error"]["code"] == "push_endpoint_invalid", endpoint
        bad_point = {**mine["keys"], "p256dh": "BA" + "A" * 85}
        r = c.post("/api/v1/push/subscribe", json={**body, "endpoint": "https://fcm.googleapis.com/fcm/send/x1",
                                                   "keys": bad_point}, headers=api.h("customer"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "push_keys_invalid"
        # At most push_subscriptions_per_user browsers.
        second = {**body, "endpoint": "https://fcm.googleapis.com/fcm/send/second"}
        assert c.post("/api/v1/push/subscribe", json=second, headers=api.h("customer")).status_code == 201
        third = {**body, "endpoint": "https://fcm.googleapis.com/fcm/send/third"}
        r = c.post("/api/v1/push/subscribe", json=third, headers=api.h("customer"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "push_subscriptions_full"
        # The page's cookie session: a cross-site POST is refused before it reaches the route.
        c.cookies.set("waimai_token", api.token("customer"))
        r = c.post("/api/v1/push/unsubscribe", json={"endpoint": mine["endpoint"]},
                   headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        r = c.post("/api/v1/push/unsubscribe", json={"endpoint": mine["endpoint"]},
                   headers={"Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200 and r.json() == {"subscribed": False}
        c.cookies.clear()
        left = c.get("/api/v1/push/subscriptions", headers=api.h("customer")).json()["subscriptions"]
        assert [s["service"] for s in left] == ["fcm.googleapis.com"]


def test_an_incident_notice_reaches_subscribed_users(sqlite_url: str, standin: tuple[str, Any]) -> None:
    from tests.firewall.incidents.test_incidents import alert, incidents_of

    base, state = standin
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        subscribe(c, api.h("customer"), base, "en")
        assert api.place().status_code == 201  # an open order: affected
        app.state.alerting.ingest([alert("PaymentGatewayDown", "P1", "payment")])
        assert app.state.notifier.run_once() == 1
        assert app.state.push_sender.run_once()["sent"] == 1
        [msg] = [a["payload"] for a in state.accepted]
        [inc] = incidents_of(c, api)
        assert msg["title"] == "Online payment: Investigating" and "Cash on delivery" in msg["body"]
        assert msg["url"] == f"/status/incidents/{inc['id']}"
        # The next update within a minute is held back like the SMS (same per-user limits); the inbox has it.
        c.post(f"/api/v1/incidents/{inc['id']}/updates", json={"status": "identified"}, headers=api.h("ops"))
        assert app.state.notifier.run_once() == 1
        assert app.state.push_sender.run_once()["sent"] == 0
        detail = c.get(f"/api/v1/incidents/{inc['id']}", headers=api.h("ops")).json()
        notes = [e for e in detail["timeline"] if e["kind"] == "notice"]
        assert "push 1" in notes[0]["text"] and "push 0" in notes[1]["text"]


def test_the_published_vapid_key_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="published example key"):
        Settings(env="test", vapid_private_key=DEMO_VAPID_PRIVATE_KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="raw P-256"):
        Settings(env="test", vapid_private_key="not-a-key")  # type: ignore[arg-type]
    own, _ = generate()
    assert Settings(env="test", vapid_private_key=own).vapid_private_key is not None  # type: ignore[arg-type]
    assert Settings(env="development", vapid_private_key=DEMO_VAPID_PRIVATE_KEY)  # type: ignore[arg-type]


def test_configured_key_is_used_and_the_generated_one_is_kept(sqlite_url: str) -> None:
    own, public = generate()
    app = create_app(make_settings(sqlite_url, vapid_private_key=own), background=False)
    with TestClient(app) as c:
        api = Api(c)
        assert c.get("/api/v1/push/public-key", headers=api.h("customer")).json()["public_key"] == public
    keys = []
    for _ in range(2):  # no key configured: made once, the same after a restart
        app = create_app(make_settings(sqlite_url), background=False)
        with TestClient(app) as c:
            keys.append(c.get("/api/v1/push/public-key", headers=Api(c).h("customer")).json()["public_key"])
    assert keys[0] == keys[1] != public


def test_a_push_refused_for_its_key_fails_once_and_keeps_the_subscription(sqlite_url: str,
                                                                         standin: tuple[str, Any]) -> None:
    """The browser subscribed with one server key; the server now signs with another (a rotated key): the
    push service answers 403, which no retry mends — the message fails at once, the subscription stays."""
    base, state = standin
    first, _ = generate()
    second, _ = generate()
    app = create_app(make_settings(sqlite_url, vapid_private_key=first, log_level="INFO"), background=False)
    with TestClient(app) as c:
        sub = subscribe(c, Api(c).h("customer"), base)
    app = create_app(make_settings(sqlite_url, vapid_private_key=second, log_level="INFO"), background=False)
    with TestClient(app) as c:
        api = Api(c)
        accept(c, api, api.place().json()["id"])
        out = app.state.push_sender.run_once()
        assert out["failed"] == 1 and out["sent"] == 0, out
        assert len(state.request_times) == 1 and "not the key" in state.rejected[0]["reason"]
        with app.state.db.read_session() as db:
            msg = db.scalar(select(PushMessage))
            assert msg is not None and msg.state == "failed" and "403" in (msg.last_error or "")
            assert db.scalar(select(PushSubscription)) is not None
    # What was logged names the refusal, never a key or the subscription's secret.
    logged = Path(app.state.settings.log_file).read_text()
    assert "push_refused" in logged
    for secret in (first, second, sub["keys"]["auth"], sub["keys"]["p256dh"], sub["endpoint"]):
        assert secret not in logged


def test_a_customer_is_not_pushed_about_what_they_did_themselves(sqlite_url: str, standin: tuple[str, Any]) -> None:
    base, state = standin
    app = create_app(make_settings(sqlite_url), background=False)
    with TestClient(app) as c:
        api = Api(c)
        subscribe(c, api.h("customer"), base, "en")
        mine, theirs = api.place().json(), api.place().json()
        r = c.post(f"/api/v1/orders/{mine['id']}/cancel", json={"reason": "changed my mind"}, headers=api.h("customer"))
        assert r.status_code == 200
        r = c.post(f"/api/v1/orders/{theirs['id']}/cancel", json={"reason": "sold out"}, headers=api.h("merchant"))
        assert r.status_code == 200
        assert app.state.push_sender.run_once()["sent"] == 1
        [msg] = [a["payload"] for a in state.accepted]
        assert msg["body"] == f"Your order {theirs['number']} was cancelled." and msg["title"] == "Waimai · Cancelled"
