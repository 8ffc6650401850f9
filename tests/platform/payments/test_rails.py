"""WeChat Pay and Alipay over real HTTP: our SDK-based providers against the stand-ins of the published APIs.

Each cycle pays on the stand-in's cashier, gets the signed (WeChat: encrypted) callback, cancels the order,
refunds it and gets the refund notification — through the app's own routes, nothing patched."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.platform.payments.railstack import RailStack, rail_stack
from waimai.platform.payments import sandbox

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def rs(db_url: str, tmp_path: Path) -> Iterator[RailStack]:
    with rail_stack(db_url, tmp_path) as s:
        yield s


def _cashier_pays(rs: RailStack, pay_url: str, provider: str, channel: str) -> None:
    """The customer on the provider's cashier: opens it and confirms (a QR code is 'scanned' first)."""
    if provider == "wechat" and channel == "native":
        assert pay_url.startswith("weixin://wxpay/bizpayurl?pr=")
        page = rs.http.get(f"{rs.wechat}/cashier/scan", params={"code_url": pay_url})
        prepay = pay_url.rpartition("pr=")[2]
        confirm = f"{rs.wechat}/cashier/confirm?prepay_id={prepay}"
    elif provider == "wechat":
        assert pay_url.startswith(f"{rs.wechat}/cashier/h5?prepay_id=")
        page = rs.http.get(pay_url)
        q = dict(parse_qsl(urlparse(pay_url).query))
        confirm = f"{rs.wechat}/cashier/confirm?{urlencode(q)}"
    else:
        assert pay_url.startswith(f"{rs.alipay}/gateway.do?")
        page = rs.http.get(pay_url)  # the stand-in checks our RSA2 signature before showing the cashier
        no = page.text.split('id="out-trade-no">', 1)[1].split("<", 1)[0]
        method = dict(parse_qsl(urlparse(pay_url).query))["method"]
        confirm = f"{rs.alipay}/cashier/confirm?out_trade_no={no}&m={method}"
    assert page.status_code == 200 and "确认支付" in page.text, page.text[:300]
    r = rs.http.post(confirm, follow_redirects=False)
    assert r.status_code in (200, 303), r.text


@pytest.mark.parametrize(("provider", "channel"), [("wechat", "native"), ("wechat", "h5"), ("alipay", "wap"),
                                                   ("alipay", "page")])
def test_pay_callback_refund_refund_callback(rs: RailStack, provider: str, channel: str) -> None:
    o = rs.place()
    r = rs.pay(o["id"], provider, channel)
    assert r.status_code == 200, r.text
    pay_url = r.json()["pay_url"]
    # Asking again returns the same open payment, not a second one.
    assert rs.pay(o["id"], provider, channel).json()["payment_id"] == r.json()["payment_id"]
    _cashier_pays(rs, pay_url, provider, channel)
    rs.wait_status(o["id"], "paid")  # only a signed callback could have done that
    r = rs.http.post(f"{rs.base}/api/v1/orders/{o['id']}/cancel", json={"reason": "changed my mind"},
                     headers=rs.h())
    assert r.status_code == 200, r.text
    # WeChat Pay refunds asynchronously (PROCESSING, then REFUND.SUCCESS); Alipay at once, then notifies.
    rs.wait_status(o["id"], "refunded")
    which = "wechat" if provider == "wechat" else "alipay"
    deadline = time.time() + 10
    while time.time() < deadline:
        stats = rs.stats(which)
        if stats["callbacks"] >= 2:
            break
        time.sleep(0.05)
    assert stats["refunds"] == 1 and stats["paid"] == 1 and stats["charged_twice"] == 0
    # Both notifications (payment, refund) were acknowledged the way the provider wants it.
    acks = [c for c in stats["last_callbacks"]]
    assert len(acks) == 2, acks
    if provider == "alipay":
        assert all(c["status"] == 200 and c["body"] == "success" for c in acks), acks
    else:
        assert all(200 <= c["status"] < 300 for c in acks), acks


def test_wechat_jsapi_prepay_and_signed_bridge_parameters(rs: RailStack) -> None:
    o = rs.place()
    r = rs.pay(o["id"], "wechat", "jsapi", openid="o-sandbox-student-1")
    assert r.status_code == 200, r.text
    prepay = r.json()["pay_url"].removeprefix("jsapi:prepay_id=")
    provider = rs.app.state.payment_providers["wechat"]
    params = provider.jsapi_params(prepay)
    wx, _ = sandbox.ensure(rs.sandbox_dir)
    from cryptography import x509

    key = x509.load_pem_x509_certificate(wx.merchant_cert_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    key.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())  # raises if bad
    rs.http.post(f"{rs.wechat}/cashier/confirm?prepay_id={prepay}")  # the pay sheet inside WeChat
    rs.wait_status(o["id"], "paid")


# ------------------------------------------------------------ forged, stale, replayed callbacks


def _wechat_callback(rs: RailStack, o: dict, *, key_pem: str | None = None, age_s: int = 0,
                     event_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A TRANSACTION.SUCCESS notification built from WeChat Pay's documents, signed with `key_pem`."""
    wx, _ = sandbox.ensure(rs.sandbox_dir)
    resource = {"appid": wx.appid, "mchid": wx.mchid, "out_trade_no": o["number"], "transaction_id": "4200000001",
                "trade_type": "NATIVE", "trade_state": "SUCCESS", "amount": {"total": o["total_fen"],
                                                                           "payer_total": o["total_fen"]}}
    nonce = secrets.token_hex(6)
    ct = AESGCM(wx.apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
    body = json.dumps({"id": event_id or secrets.token_hex(8), "create_time": "2026-12-06T10:00:00+08:00",
                       "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
                       "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                                    "ciphertext": base64.b64encode(ct).decode(), "associated_data": "transaction",
                                    "nonce": nonce}})
    key = serialization.load_pem_private_key((key_pem or wx.platform_key_pem).encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    ts, n = str(int(time.time()) - age_s), secrets.token_hex(8)
    sig = base64.b64encode(key.sign(f"{ts}\n{n}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return body.encode(), {"content-type": "application/json", "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": n,
                           "Wechatpay-Signature": sig, "Wechatpay-Serial": wx.platform_serial,
                           "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def _alipay_notify(rs: RailStack, o: dict, *, key_pem: str | None = None, age_s: int = 0,
                   notify_id: str | None = None) -> bytes:
    _, ali = sandbox.ensure(rs.sandbox_dir)
    sent = dt.datetime.now(SHANGHAI) - dt.timedelta(seconds=age_s)
    total = f"{o['total_fen'] // 100}.{o['total_fen'] % 100:02d}"
    params = {"notify_time": sent.strftime("%Y-%m-%d %H:%M:%S"), "notify_type": "trade_status_sync",
              "notify_id": notify_id or secrets.token_hex(8), "app_id": ali.appid, "charset": "utf-8",
              "version": "1.0", "trade_no": "2026000001", "out_trade_no": o["number"], "total_amount": total,
              "trade_status": "TRADE_SUCCESS"}
    unsigned = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    key = serialization.load_pem_private_key((key_pem or ali.alipay_private_key_pem).encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    params["sign"] = base64.b64encode(key.sign(unsigned.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    params["sign_type"] = "RSA2"
    return urlencode(params).encode()


def _other_key() -> str:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()


def test_wechat_forged_stale_and_replayed_callbacks_are_refused(rs: RailStack) -> None:
    o = rs.place()
    assert rs.pay(o["id"], "wechat", "native").status_code == 200
    url = f"{rs.base}/api/v1/payments/callbacks/wechat"
    body, headers = _wechat_callback(rs, o, key_pem=_other_key())
    assert rs.http.post(url, content=body, headers=headers).status_code == 401  # forged: not the platform key
    body, headers = _wechat_callback(rs, o, age_s=3600)
    r = rs.http.post(url, content=body, headers=headers)
    assert r.status_code == 401 and "stale" in r.text  # stale: correctly signed an hour ago
    tampered, headers = _wechat_callback(rs, o)
    assert rs.http.post(url, content=tampered.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" '),
                        headers=headers).status_code == 401
    assert rs.order(o["id"])["status"] == "created"
    body, headers = _wechat_callback(rs, o, event_id="EV-replay")
    assert rs.http.post(url, content=body, headers=headers).status_code == 200
    assert rs.order(o["id"])["status"] == "paid"
    r = rs.http.post(url, content=body, headers=headers)  # the very same notification again
    assert r.status_code == 200 and r.json()["message"] == "duplicate"
    hist = rs.http.get(f"{rs.base}/api/v1/orders/{o['id']}/transitions", headers=rs.h()).json()
    assert [h["to_status"] for h in hist].count("paid") == 1


def test_alipay_forged_stale_and_replayed_notifications_are_refused(rs: RailStack) -> None:
    o = rs.place()
    assert rs.pay(o["id"], "alipay", "wap").status_code == 200
    url = f"{rs.base}/api/v1/payments/callbacks/alipay"
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert rs.http.post(url, content=_alipay_notify(rs, o, key_pem=_other_key()), headers=form).status_code == 401
    r = rs.http.post(url, content=_alipay_notify(rs, o, age_s=3600), headers=form)
    assert r.status_code == 401 and "stale" in r.text
    tampered = _alipay_notify(rs, o).replace(b"total_amount=", b"total_amount=1")
    assert rs.http.post(url, content=tampered, headers=form).status_code == 401
    assert rs.order(o["id"])["status"] == "created"
    body = _alipay_notify(rs, o, notify_id="replayed-1")
    r = rs.http.post(url, content=body, headers=form)
    assert r.status_code == 200 and r.text == "success"
    assert rs.order(o["id"])["status"] == "paid"
    assert rs.http.post(url, content=body, headers=form).text == "success"  # acknowledged, not applied again
    hist = rs.http.get(f"{rs.base}/api/v1/orders/{o['id']}/transitions", headers=rs.h()).json()
    assert [h["to_status"] for h in hist].count("paid") == 1


# ------------------------------------------------------------ interrupted payments, never charged twice


@pytest.mark.parametrize(("provider", "channel"), [("wechat", "h5"), ("alipay", "wap")])
def test_lost_callback_is_settled_by_query(rs: RailStack, provider: str, channel: str) -> None:
    from waimai.platform.payments.jobs import settle_overdue

    rs.config(provider, callbacks_enabled=False)  # the customer pays; the notification never arrives
    o = rs.place()
    pay_url = rs.pay(o["id"], provider, channel).json()["pay_url"]
    _cashier_pays(rs, pay_url, provider, channel)
    time.sleep(0.5)
    assert rs.order(o["id"])["status"] == "created"
    assert rs.stats(provider)["callbacks"] == 0
    # The settle job asks the provider about overdue payments (here: at once).
    assert settle_overdue(rs.app.state.db, rs.app.state.payment_providers, older_than_s=0) == ["paid"]
    assert rs.order(o["id"])["status"] == "paid"
    assert settle_overdue(rs.app.state.db, rs.app.state.payment_providers, older_than_s=0) == []
    # Paying again is refused: the order is paid, and the provider saw one payment.
    assert rs.pay(o["id"], provider, channel).status_code == 409
    assert rs.stats(provider)["paid"] == 1 and rs.stats(provider)["charged_twice"] == 0


def test_lost_refund_notification_is_settled_by_query(rs: RailStack) -> None:
    from waimai.platform.payments.jobs import settle_overdue

    o = rs.place()
    _cashier_pays(rs, rs.pay(o["id"], "wechat", "h5").json()["pay_url"], "wechat", "h5")
    rs.wait_status(o["id"], "paid")
    rs.config("wechat", callbacks_enabled=False)  # REFUND.SUCCESS will not arrive
    assert rs.http.post(f"{rs.base}/api/v1/orders/{o['id']}/cancel", json={"reason": "x"},
                        headers=rs.h()).json()["status"] == "cancelled"
    time.sleep(0.5)
    assert rs.order(o["id"])["status"] == "cancelled"  # refund PROCESSING, no notification
    assert settle_overdue(rs.app.state.db, rs.app.state.payment_providers, older_than_s=0) == ["refunded"]
    assert rs.order(o["id"])["status"] == "refunded"
    assert rs.stats("wechat")["refunds"] == 1


def test_switching_provider_after_paying_silently_charges_once(rs: RailStack) -> None:
    """Paid with WeChat Pay (callback lost), then the customer tries Alipay: the WeChat payment is found
    by query and stands; Alipay is never asked to take the money."""
    o = rs.place()
    rs.config("wechat", callbacks_enabled=False)
    first = rs.pay(o["id"], "wechat", "h5").json()
    _cashier_pays(rs, first["pay_url"], "wechat", "h5")
    r = rs.pay(o["id"], "alipay", "wap")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["payment_id"] == first["payment_id"]
    assert rs.order(o["id"])["status"] == "paid"
    assert rs.stats("alipay")["trades"] == 0


def test_switching_provider_closes_the_open_trade(rs: RailStack) -> None:
    o = rs.place()
    code_url = rs.pay(o["id"], "wechat", "native").json()["pay_url"]
    r = rs.pay(o["id"], "alipay", "page")
    assert r.status_code == 200 and r.json()["pay_url"].startswith(f"{rs.alipay}/gateway.do?")
    # The WeChat trade was closed at WeChat Pay: scanning its QR code now takes no money.
    prepay = code_url.rpartition("pr=")[2]
    assert "CLOSED" in rs.http.get(f"{rs.wechat}/cashier/scan", params={"code_url": code_url}).text
    rs.http.post(f"{rs.wechat}/cashier/confirm?prepay_id={prepay}")
    assert rs.stats("wechat")["paid"] == 0


# ------------------------------------------------------------ reconciliation


@pytest.mark.parametrize("provider", ["wechat", "alipay"])
def test_daily_bill_with_planted_mismatches_is_reconciled(rs: RailStack, provider: str) -> None:
    from sqlalchemy import select

    from waimai.platform.payments import reconcile
    from waimai.platform.payments.models import BillMismatch

    channel = "h5" if provider == "wechat" else "wap"
    ok = rs.place()  # paid and recorded: no mismatch
    _cashier_pays(rs, rs.pay(ok["id"], provider, channel).json()["pay_url"], provider, channel)
    rs.wait_status(ok["id"], "paid")
    lost = rs.place()  # paid at the provider, callback lost: the bill shows it, we have it pending
    rs.http.get(rs.pay(lost["id"], provider, channel).json()["pay_url"])  # the customer reaches the cashier
    r = rs.http.post(f"{getattr(rs, provider)}/admin/pay-silently", json={"out_trade_no": lost["number"]})
    assert r.status_code == 200
    rs.http.post(f"{getattr(rs, provider)}/admin/plant-bill-row", json={"out_trade_no": "W-NOT-OURS", "amount_fen": 999})
    day = dt.datetime.now(SHANGHAI).date()
    db, providers = rs.app.state.db, rs.app.state.payment_providers
    found = reconcile.reconcile(db, provider=providers[provider], providers=providers, day=day)
    assert sorted(found) == ["paid_not_recorded", "unknown_trade"]
    assert rs.order(lost["id"])["status"] == "paid"  # recovered by query
    with db.read_session() as s:
        rows = {m.kind: (m.status, m.out_trade_no, m.bill_amount_fen) for m in s.scalars(select(BillMismatch))}
    assert rows["paid_not_recorded"][:2] == ("recovered", lost["number"])
    assert rows["unknown_trade"] == ("open", "W-NOT-OURS", 999)
    assert reconcile.open_count(db) == {provider: 1}
    # A second run of the same day finds nothing new.
    assert reconcile.reconcile(db, provider=providers[provider], providers=providers, day=day) == []
    ops = rs.login_as("ops")
    page = rs.http.get(f"{rs.base}/ops/payments", headers={"Authorization": f"Bearer {ops}"})
    assert page.status_code == 200 and "W-NOT-OURS" in page.text
    # The hourly job publishes the open count; the PaymentBillMismatch rule fires on it.
    from waimai.platform.payments.jobs import payment_jobs

    job = next(j for j in payment_jobs(rs.app) if j.name == "payment_reconcile")
    job.fn()
    rs.app.state.sampler.sample()  # the first sample is the baseline
    time.sleep(1.1)
    assert rs.app.state.sampler.sample()["bill_mismatches_open"] >= 1
    rs.app.state.alerting.evaluate()
    firing = {a.alert.name for a in rs.app.state.alerting.pipeline.alerts.values() if a.alert.status == "firing"}
    assert "PaymentBillMismatch" in firing


def test_paid_after_cancel_found_in_bill_is_refunded(rs: RailStack) -> None:
    from waimai.platform.payments import reconcile

    o = rs.place()
    rs.config("wechat", callbacks_enabled=False)
    rs.pay(o["id"], "wechat", "h5")
    assert rs.http.post(f"{rs.base}/api/v1/orders/{o['id']}/cancel", json={"reason": "left"},
                        headers=rs.h()).status_code == 200
    rs.http.post(f"{rs.wechat}/admin/pay-silently", json={"out_trade_no": o["number"]})
    rs.config("wechat", callbacks_enabled=True)
    db, providers = rs.app.state.db, rs.app.state.payment_providers
    found = reconcile.reconcile(db, provider=providers["wechat"], providers=providers,
                                day=dt.datetime.now(SHANGHAI).date())
    assert found == ["paid_not_recorded"]
    rs.wait_status(o["id"], "refunded")  # refund sent, REFUND.SUCCESS notification applied
    assert rs.stats("wechat")["refunds"] == 1


# ------------------------------------------------------------ failover


def test_failover_wechat_to_alipay_to_cash_on_delivery(db_url: str, tmp_path: Path) -> None:
    with rail_stack(db_url, tmp_path, breaker_failure_threshold=2, breaker_open_s=1.0, cod_recovery_s=0.0) as rs:
        guard = rs.app.state.payment_guard
        o = rs.place()
        rs.config("wechat", failure_rate=1.0)
        for _ in range(2):
            assert rs.pay(o["id"], "wechat", "h5").status_code == 503
        # WeChat Pay's breaker is open: checkout offers Alipay, and asking for WeChat Pay says so.
        r = rs.pay(o["id"], "wechat", "h5")
        assert r.status_code == 503 and r.json()["error"]["details"]["offered"] == ["alipay"]
        r = rs.pay(o["id"])  # the default: the first provider offered
        assert r.status_code == 200, r.text
        assert r.json()["pay_url"].startswith(f"{rs.alipay}/gateway.do?")
        assert guard.run() != "engaged"
        o2 = rs.place()
        rs.config("alipay", failure_rate=1.0)
        for _ in range(2):
            assert rs.pay(o2["id"], "alipay", "wap").status_code == 503
        assert guard.run() == "engaged"  # both down: cash on delivery only
        r = rs.pay(o2["id"])
        assert r.status_code == 409 and r.json()["error"]["code"] == "payment_cod_only"
        r = rs.http.post(f"{rs.base}/api/v1/orders/{o2['id']}/pay?method=cod", headers=rs.h())
        assert r.status_code == 200 and rs.order(o2["id"])["status"] == "cod_confirmed"
        # Alipay recovers (WeChat Pay does not): the guard's trial calls close Alipay's breaker only, and
        # online payment comes back through Alipay.
        rs.config("alipay", failure_rate=0.0)
        deadline = time.time() + 10
        while guard.run() != "released" and time.time() < deadline:
            time.sleep(0.3)
        assert rs.app.state.payment_providers["wechat"].dependency.record().state != "closed"
        o3 = rs.place()
        r = rs.pay(o3["id"], "alipay", "wap")
        assert r.status_code == 200 and r.json()["pay_url"].startswith(f"{rs.alipay}/gateway.do?")


def test_standins_refuse_requests_not_signed_as_documented(rs: RailStack) -> None:
    body = {"appid": "wxsandbox0000001", "mchid": "1900000109", "description": "x", "out_trade_no": "W1",
            "notify_url": "http://127.0.0.1:9/n", "amount": {"total": 1}}
    r = rs.http.post(f"{rs.wechat}/v3/pay/transactions/native", json=body)
    assert r.status_code == 401 and r.json()["code"] == "SIGN_ERROR"
    forged = ('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="n1",signature="AAAA",'
              f'timestamp="{int(time.time())}",serial_no="00"')
    r = rs.http.post(f"{rs.wechat}/v3/pay/transactions/native", json=body, headers={"Authorization": forged})
    assert r.status_code == 401
    r = rs.http.get(f"{rs.alipay}/gateway.do", params={"app_id": "2021000000000001", "method": "alipay.trade.query",
                                                      "sign_type": "RSA2", "sign": "AAAA", "charset": "utf-8",
                                                      "timestamp": "2026-01-01 00:00:00", "version": "1.0",
                                                      "biz_content": '{"out_trade_no":"W1"}'})
    assert "isv.invalid" in r.text and "10000" not in r.text


def test_payments_console_is_for_ops_only(rs: RailStack) -> None:
    r = rs.http.get(f"{rs.base}/ops/payments", headers=rs.h(), follow_redirects=False)
    assert r.status_code == 303 and "/login" in r.headers["location"]
    ops = {"Authorization": f"Bearer {rs.login_as('ops')}"}
    page = rs.http.get(f"{rs.base}/ops/payments", headers=ops)
    assert page.status_code == 200 and 'data-provider="wechat"' in page.text and 'id="no-mismatch"' in page.text
    r = rs.http.post(f"{rs.base}/ops/payments/reconcile", headers=rs.h(), data={"day": "2026-12-01"},
                     follow_redirects=False)
    assert r.status_code == 303 and "/login" in r.headers["location"]
