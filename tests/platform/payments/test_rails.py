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
