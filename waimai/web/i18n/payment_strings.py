"""The payment rails' strings (WeChat Pay, Alipay, reconciliation), merged into the catalogs by `catalog.py`."""

from __future__ import annotations

PREFIXED: dict[str, dict[str, tuple[str, str]]] = {
    "mismatch.": {"paid_not_recorded": ("paid, not recorded", "已支付未入账"),
                  "unknown_trade": ("not our order", "非本平台订单"),
                  "amount_mismatch": ("amounts differ", "金额不符"),
                  "not_in_bill": ("missing from the bill", "账单中缺失"),
                  "refund_not_recorded": ("refund not recorded", "退款未入账")},
    "mismatch_status.": {"open": ("open", "待处理"), "recovered": ("recovered", "已补单"),
                         "refunded": ("refunded", "已退款"), "resolved": ("resolved", "已处理")},
}

ZH: dict[str, str] = {
    "WeChat Pay": "微信支付", "Alipay": "支付宝", "sandbox": "沙箱",
    "A test cashier: no real money moves.": "测试收银台：不会产生真实扣款。",
    "QR code to scan with WeChat": "用微信扫描的二维码",
    "Open WeChat, tap Scan, and point it at this code.": "打开微信，点击“扫一扫”，对准此二维码。",
    "I have paid: show my order": "我已支付，查看订单",
    "Sandbox: no phone needed.": "沙箱环境：无需手机。", "Open the test cashier": "打开测试收银台",
    "Payments": "支付", "Reconciliation": "对账", "Bill date": "账单日期", "Provider": "支付渠道",
    "Order number": "订单号", "In the bill": "账单金额", "Ours": "本平台金额",
    "Detail": "说明", "No mismatch: every bill line matches our payments.": "无差异：账单与本平台支付记录一致。",
    "Breakers": "熔断器", "Reconcile yesterday now": "立即对账（昨日）",
    "Payment providers": "支付渠道状态", "offered at checkout": "结账时可选", "not offered (failing)": "暂不提供（故障）",
    "Reconciled {provider} for {day}: {n} new mismatches.": "已对账 {provider} {day}：新增 {n} 条差异。",
    "{name} is not working right now; pay with {other} or cash on delivery.":
        "{name} 暂时不可用，请使用 {other} 或货到付款。",
}
