"""Source of the message catalogs: `python -m waimai.web.i18n.catalog` rewrites en.po and zh_CN.po.

Keeping the pairs here (reviewed in code review) and generating the .po files keeps them in step.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from waimai.web.i18n import payroll_strings, support_strings

STATUS = {
    "created": ("Awaiting payment", "待支付"), "paid": ("Paid", "已支付"),
    "cod_confirmed": ("Cash on delivery", "货到付款"), "accepted": ("Accepted", "商家已接单"),
    "preparing": ("Preparing", "制作中"), "ready": ("Ready for pickup", "待取餐"),
    "picked_up": ("On the way", "配送中"), "delivered": ("Delivered", "已送达"),
    "cancelled": ("Cancelled", "已取消"), "rejected": ("Rejected by the shop", "商家已拒单"),
    "refunded": ("Refunded", "已退款"), "failed": ("Delivery failed", "配送失败"),
}
STEP = {
    "created": ("Placed", "已下单"), "accepted": ("Accepted", "已接单"), "preparing": ("Cooking", "制作中"),
    "ready": ("Ready", "待取餐"), "picked_up": ("On the way", "配送中"), "delivered": ("Delivered", "已送达"),
}
PAY = {"gateway": ("Paid online", "在线支付"), "cod": ("Cash on delivery", "货到付款"),
       "platform": ("Paid on the platform", "平台已支付")}
ALERT = {"firing": ("Firing", "告警中"), "acknowledged": ("Acknowledged", "已确认"), "resolved": ("Resolved", "已恢复")}

COMPONENT = {"operational": ("Operational", "正常"), "degraded_performance": ("Degraded performance", "性能下降"),
             "partial_outage": ("Partial outage", "部分中断"), "major_outage": ("Major outage", "严重中断"),
             "under_maintenance": ("Under maintenance", "维护中"), "no_data": ("No data", "无数据")}
STAGE = {"investigating": ("Investigating", "调查中"), "identified": ("Identified", "已定位"),
         "monitoring": ("Monitoring", "观察中"), "resolved": ("Resolved", "已恢复")}
INDICATOR = {"none": ("All systems operational", "所有服务运行正常"), "minor": ("Some services are slower than usual",
             "部分服务响应较慢"), "major": ("Partial outage", "部分服务中断"), "critical": ("Major outage", "服务严重中断"),
             "maintenance": ("Maintenance in progress", "正在维护")}
ROLE = {"commander": ("Commander", "指挥官"), "communications": ("Communications", "沟通负责人"),
        "operations": ("Operations", "运维负责人"), "scribe": ("Scribe", "记录员")}

ZH = {
    "System status": "服务状态", "Expected recovery": "预计恢复", "What you can do": "您可以", "Scheduled maintenance": "计划维护",
    "Uptime over 90 days": "90 天可用率", "No data": "无数据", "90 days ago": "90 天前",
    "uptime": "可用率", "Today": "今天", "Past incidents": "历史事件", "No incidents in the last 14 days.": "最近 14 天没有事件。",
    "Get updates": "获取通知", "You are subscribed: incident updates reach your inbox and phone.": "已订阅：事件更新会发送到站内信和手机。",
    "Unsubscribe": "取消订阅", "Subscribe to updates": "订阅更新", "to get incident updates by SMS and in the app.":
    "后可通过短信和站内信接收事件更新。", "Notices": "通知", "Mark all read": "全部标为已读",
    "No notices. When something affects your orders, we tell you here and by SMS.": "暂无通知。影响您订单的情况会在这里和短信中告知。",
    "new": "新", "Details on the status page": "在状态页查看详情", "Status": "状态", "Incidents": "事件",
    "Subscribed: incident updates will reach your inbox and phone.": "已订阅：事件更新会发送到站内信和手机。",
    "Unsubscribed.": "已取消订阅。", "Public status page": "公开状态页", "Open incidents": "进行中的事件",
    "No open incident. P1 and P2 alerts open one automatically.": "没有进行中的事件。P1、P2 告警会自动创建事件。",
    "no commander": "未指定指挥官", "Open an incident": "创建事件", "Title": "标题", "Severity": "级别",
    "Public (status page and user notices)": "公开（状态页与用户通知）", "Open incident": "创建事件",
    "Component status": "组件状态", "override": "手动设置", "Override": "手动设置", "follow incidents": "跟随事件",
    "Set": "设置", "Resolved": "已解决", "Incident": "事件", "All incidents": "全部事件", "Public page": "公开页面",
    "impact": "影响", "public": "公开", "internal": "内部", "source": "来源", "onset → detected": "故障开始 → 发现",
    "detected → acknowledged": "发现 → 确认", "onset → resolved": "故障开始 → 解决", "Post an update": "发布更新",
    "Message (Chinese)": "消息（中文）", "Message (English)": "消息（英文）", "Empty: a standard text for the status":
    "留空则使用该状态的标准文案", "Expected recovery in (minutes)": "预计多少分钟后恢复", "Impact": "影响",
    "Workaround shown to users": "展示给用户的替代方案", "Public: status page, banner and user notices": "公开：状态页、横幅与用户通知",
    "Post update": "发布更新", "Timeline": "时间线", "Add a note to the timeline": "在时间线上添加备注", "Add note": "添加备注",
    "SOP checklist": "SOP 检查清单", "Roles": "角色", "Save roles": "保存角色", "Incident opened.": "事件已创建。",
    "Update posted.": "更新已发布。", "Acknowledged.": "已确认。", "Roles saved.": "角色已保存。", "Note added.": "备注已添加。",
    "Checklist updated.": "检查清单已更新。", "Report": "报告", "Root-cause report": "根因报告",
    "Five whys": "五个为什么", "Why?": "为什么？", "Root cause": "根本原因", "Notes": "备注", "Save review": "保存复盘",
    "Action items": "改进项", "None yet.": "暂无。", "New action item": "新增改进项", "Owner": "负责人",
    "Compensation": "补偿", "Budget (¥)": "预算（元）", "Preview": "预览", "users": "位用户",
    "scaled to the budget": "已按预算缩放", "Coupons cannot be taken back": "优惠券发出后无法收回",
    "Issue coupons": "发放优惠券", "Review saved.": "复盘已保存。", "Action item added.": "改进项已添加。",
    "Action item updated.": "改进项已更新。", "Coupons issued.": "优惠券已发放。", "Runbooks": "预案脚本", "Dry run: what it would do": "演练：将会执行的操作",
    "destructive": "破坏性操作", "Type the runbook's name to confirm": "输入预案名称以确认", "Dry run": "预演",
    "Run": "执行", "Remediation policies": "自动处置策略", "Alert": "告警", "Runbook": "预案", "Cooldown": "冷却时间",
    "Max per hour": "每小时上限", "Verify after": "验证时间", "no rollback": "不回滚", "Recent runs": "最近执行",
    "Done: ": "已完成：", "Failed: ": "失败：", "Coupon": "优惠券", "No coupon": "不使用优惠券",
    "off": "立减", "min. spend": "满", "Switches on": "已打开的开关", "Component status saved.": "组件状态已保存。",
    "4-digit code": "4 位取货码", "Accept": "接单", "Add": "加入", "Added to cart: ": "已加入购物车：",
    "Back in stock": "恢复供应", "Back to shops": "返回商家列表", "Campus shops": "校园商家", "Cancel order": "取消订单",
    "Cart": "购物车", "Cash on delivery": "货到付款", "Check out": "去结算", "Closed": "休息中", "Deliver to": "送至",
    "Delivered": "已送达", "Delivery fee": "配送费", "Demo accounts are printed when the server starts.":
    "演示账号在服务启动时打印在终端里。", "Done.": "已完成。", "End shift": "下班", "History": "订单记录",
    "Incoming orders": "新订单", "Item not found.": "找不到该菜品。", "Main": "主导航", "Mark ready": "出餐完成",
    "Mark sold out": "标记售罄", "Merchant console": "商家后台", "My orders": "我的订单", "My tasks": "我的任务",
    "No open orders. New ones appear here automatically.": "暂无待处理订单，新订单会自动出现在这里。",
    "No orders yet.": "还没有订单。", "No rider profile for this account.": "该账号没有骑手资料。",
    "No shop is linked to this account.": "该账号没有关联店铺。",
    "No shops yet. Ask your campus team to add one.": "还没有商家，请联系校园团队添加。",
    "No tasks right now.": "暂时没有任务。", "Note": "备注", "Note for the shop": "给商家的备注", "Off shift": "未上班",
    "Off shift.": "已下班。", "On shift until": "上班至", "On shift.": "已上班。", "Open": "营业中", "Order": "订单",
    "Order not found.": "找不到该订单。", "Order placed. Pay the rider in cash on delivery.": "下单成功，请在送达时向骑手付现金。",
    "Password": "密码", "Pause shop": "暂停营业", "Paused": "已暂停", "Pay cash on delivery instead": "改为货到付款",
    "Pay online": "在线支付", "Payment": "支付方式", "Phone number": "手机号", "Picked up": "已取餐",
    "Place order": "提交订单", "Please check the cart: a quantity or option is not valid.": "请检查购物车：数量或规格无效。",
    "Progress": "进度", "Proof code": "取货码", "Quantity": "数量", "Reject": "拒单", "Remove": "删除",
    "Reopen shop": "恢复营业", "Rider": "骑手", "Shop status updated.": "店铺状态已更新。", "Shops": "商家",
    "Show this code to the rider at delivery": "送达时向骑手出示此取货码", "Sign in": "登录", "Sign out": "退出",
    "Sold out": "已售罄", "Something is not right": "出了点问题", "Start preparing": "开始制作", "Start shift": "上班",
    "Stock": "库存", "Stock updated.": "库存已更新。", "Switched to cash on delivery.": "已改为货到付款。",
    "That item no longer exists.": "该菜品已下架。",
    "The proof code does not match; ask the customer for the 4 digits.": "取货码不正确，请向顾客确认 4 位数字。",
    "This order is assigned to another rider.": "该订单已分配给其他骑手。", "This page is for another role.": "此页面属于其他角色。",
    "This shop does not exist.": "该商家不存在。", "Total": "合计", "Waimai": "校园外卖",
    "Waiting for the kitchen": "等待出餐", "Your cart is empty.": "购物车是空的。",
    "about %(n)s min to prepare": "约 %(n)s 分钟出餐", "expected by": "预计送达", "left": "剩余", "none": "无",
    "placed at": "下单于", "Ops overview": "运维总览", "Ops": "运维", "Time range": "时间范围", "Last hour": "最近一小时",
    "Last day": "最近一天", "Components": "组件状态", "up": "正常", "down": "故障",
    "No data yet: samples arrive every few seconds.": "暂无数据：每隔几秒采样一次。", "Orders per minute": "每分钟订单数",
    "Payment success rate": "支付成功率", "p95 latency (ms)": "p95 延迟（毫秒）", "Dispatch backlog": "待派单",
    "Riders on shift": "在岗骑手", "Server error rate": "服务错误率", "Alerts": "告警",
    "Platform intake": "平台订单接入", "Today, per platform": "今日各平台", "Platform": "平台", "Received": "接收",
    "Cancelled": "已取消", "Callbacks acknowledged": "回传已确认", "Pending": "待回传",
    "Dead": "失败", "Intake": "接单", "not configured": "未配置", "Resume": "恢复", "Pause": "暂停",
    "Dead letters": "回传失败", "None: every status reached its platform.": "无：所有状态都已回传平台。",
    "Intake switch updated.": "接单开关已更新。", "Edit rules": "编辑规则", "On call": "值班",
    "No schedule configured (WAIMAI_ALERTING_CONFIG_FILE).": "未配置值班表（WAIMAI_ALERTING_CONFIG_FILE）。",
    "rotation": "轮值", "Alert rules": "告警规则", "Not saved: the rules are not valid.": "未保存：规则无效。",
    "Kinds: threshold, change, absence, anomaly, burn_rate. Saved rules apply at once and survive restarts.":
    "类型：threshold、change、absence、anomaly、burn_rate。保存后立即生效，重启后仍保留。",
    "Order forecast": "订单预测", "Surge ahead: staff up now.": "即将迎来高峰：请立即增派骑手。",
    "Next 30 min": "未来 30 分钟", "Next 15 min": "未来 15 分钟", "Next 60 min": "未来 60 分钟", "orders": "单", "Riders needed": "需要骑手",
    "on shift": "在岗", "Not enough history yet: the forecast needs a week of samples.": "历史数据不足：预测需要一周的采样。",
    "Anomaly signals": "异常信号", "expected": "预期", "over": "已结束",
    "Where your order is": "订单位置", "Campus map": "校园地图", "shop": "商家", "you": "你", "rider": "骑手",
    "arrives in": "预计",
    "Logs": "日志", "Request id": "请求 ID", "Order id": "订单 ID", "Text": "文本", "From": "从", "To": "到",
    "Search": "搜索", "No log line matches.": "没有匹配的日志。", "Time": "时间", "Level": "级别", "Message": "消息",
    "Details": "详情",
    "Save rules": "保存规则", "Active rules": "生效规则", "Rules saved and active.": "规则已保存并生效。", "Recent platform orders": "最近的平台订单", "all": "全部",
    "No platform orders yet.": "还没有平台订单。",
    "Nothing is firing. Alerts appear here as soon as a rule fires.": "当前没有告警。规则一触发就会出现在这里。",
    "to": "发往", "escalation step": "升级级别", "acknowledged by": "确认人", "Acknowledge": "确认",
    "Minutes": "分钟", "Silence": "静默", "Active silences": "生效中的静默", "None.": "无。", "until": "直到",
    "Noise per rule": "各规则噪音", "Rule": "规则", "Notifications": "通知数", "Flaps": "抖动次数",
    "Noise per rule, last 7 days": "近 7 天各规则噪音", "Fired": "触发", "Acknowledged by someone": "有人确认",
    "Resolved by itself within its for": "在 for 时长内自行恢复",
    "Nothing fired in the last 7 days.": "近 7 天没有告警触发。",
    "Nobody is notified: receiver(s) %(names)s have no channel. Alerts reach only this page; configure a "
    "channel in WAIMAI_ALERTING_CONFIG_FILE.": "没有人会收到通知：接收方 %(names)s 未配置任何渠道。告警只显示在本页；"
    "请在 WAIMAI_ALERTING_CONFIG_FILE 中配置渠道。",
    "No such alert group.": "找不到该告警组。", "Acknowledged: repeats and escalation stop.": "已确认：停止重复通知和升级。",
    "Alerting is not running.": "告警未运行。", "Silenced.": "已静默。",
 "Phone number or password is wrong.": "手机号或密码错误。",
    "Too many failed sign-ins; wait a few minutes and try again.": "登录失败次数过多，请几分钟后再试。",
    "Online payment is not working right now; choose cash on delivery or retry.": "在线支付暂时不可用，请选择货到付款或稍后重试。",
    # Degradation switches (cart, the light ordering page)
    "Online payment is not available right now (the payment service is having trouble). Pay the rider in cash on "
    "delivery; nothing else changes.": "在线支付暂时不可用（支付服务出现故障）。请货到付款，其他不受影响。",
    "Riders are short right now: orders go to a campus pick-up point (locker) instead of your door. We will tell "
    "you when it is there.": "骑手暂时紧张：订单将送到校园自提点（快递柜），不送到门口。送达后会通知您。",
    "Pick up at": "自提点", "Quick order": "快速下单",
    "We are busy: this light page keeps ordering fast. Menus may be up to a minute old; payment is cash on "
    "delivery.": "系统繁忙：此简易页面让下单保持顺畅。菜单可能有一分钟延迟；支付方式为货到付款。",
    "A light ordering page: menus may be up to a minute old; payment is cash on delivery.":
    "简易下单页面：菜单可能有一分钟延迟；支付方式为货到付款。",
    "Riders are short: orders go to a campus pick-up point, not to your door.": "骑手紧张：订单送到校园自提点，不送到门口。",
    "Order placed": "下单成功", "proof code": "取餐码", "Follow the order": "查看订单", "Sign in to order": "登录后下单",
    "No shop is open right now.": "现在没有营业的店铺。", "Full site": "完整版", "menus updated %(n)s s ago": "菜单 %(n)s 秒前更新",
    "Choose at least one dish.": "请至少选择一道菜。",
    "Please check the quantities: whole numbers from 1 to 99.": "请检查数量：1 到 99 的整数。",
}


def build() -> None:
    here = Path(__file__).resolve().parent
    for locale in ("en", "zh_CN"):
        cat = Catalog(locale=locale, project="waimai", charset="utf-8")
        for prefix, table in (("status.", STATUS), ("step.", STEP), ("pay.", PAY), ("alert.", ALERT),
                              ("component.", COMPONENT), ("stage.", STAGE), ("indicator.", INDICATOR),
                              ("role.", ROLE), *support_strings.PREFIXED.items(),
                              *payroll_strings.PREFIXED.items()):
            for k, (en, zh) in table.items():
                cat.add(prefix + k, en if locale == "en" else zh)
        if locale == "zh_CN":
            for en, zh in {**support_strings.ZH, **payroll_strings.ZH, **ZH}.items():
                cat.add(en, zh)
        with (here / f"{locale}.po").open("wb") as f:
            write_po(f, cat, omit_header=False, sort_output=True)


if __name__ == "__main__":
    build()
