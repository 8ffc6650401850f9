"""The customer-service pages' strings (support console, tickets, ratings, satisfaction), merged into the
catalogs by `catalog.py`."""

from __future__ import annotations

PREFIXED: dict[str, dict[str, tuple[str, str]]] = {
    "ticket.": {"open": ("Open", "待处理"), "in_progress": ("In progress", "处理中"), "resolved": ("Resolved", "已解决")},
    "sla.": {"met": ("met", "已达标"), "due": ("on time so far", "进行中"), "breached": ("overdue", "已超时")},
    "resolution.": {"refund": ("refund", "退款"), "redelivery": ("re-delivery", "重新配送"), "coupon": ("coupon", "优惠券"),
                    "no_action": ("no action needed", "无需处理")},
    "role_name.": {"customer": ("Customer", "顾客"), "merchant": ("Merchant", "商家"), "rider": ("Rider", "骑手"),
                   "support": ("Support", "客服"), "ops": ("Ops", "运维"), "system": ("System", "系统")},
    "ticket_event.": {"created": ("reported", "提交"), "status": ("status", "状态"), "reply": ("message", "留言"),
                      "note": ("note", "备注"), "photo": ("photo", "照片"), "linked": ("incident link", "关联事件"),
                      "resolved": ("resolved", "解决"), "refund_failed": ("refund failed", "退款失败")},
}

ZH: dict[str, str] = {
    # categories (waimai.platform.support.service.CATEGORIES)
    "Late delivery": "送餐超时", "Missing item": "漏送餐品", "Wrong item": "送错餐品", "Food arrived cold": "餐品已凉",
    "Rider behaviour": "骑手服务态度", "Charged twice": "重复扣款", "No rider came for the order": "无骑手取餐",
    "Food not ready at pickup": "到店未出餐", "Customer unreachable": "联系不上顾客", "Wrong or unclear address": "地址错误或不清楚",
    "Something else": "其他问题",
    # sources
    "Ordered in the app": "App 下单", "Taken by support": "客服代下单", "Re-delivery": "重新配送",
    # support console
    "Support console": "客服工作台", "Tickets": "工单", "open": "待处理", "in progress": "处理中", "overdue": "已超时",
    "Online payment is switched off (payment.cod_only): take cash on delivery.": "在线支付已关闭（payment.cod_only）：请选择货到付款。",
    "The app runs in simple mode: customers who cannot order there may call; place their orders here.":
        "App 正处于简易模式：无法下单的顾客可能来电，请在这里代为下单。",
    "Riders are short: orders go to pick-up points only.": "骑手不足：订单只能送到自提点。",
    "Customer's phone number": "顾客手机号", "Find": "查找",
    "No customer has this number yet. Create one (they can set a password later):": "该号码还没有顾客账号。创建一个（顾客之后可设置密码）：",
    "Name": "姓名", "Create customer": "创建顾客", "Customer created.": "顾客已创建。", "New order": "新订单", "Shop": "商家",
    "Show menu": "查看菜单", "Payment link (sent to the customer)": "支付链接（发给顾客）",
    "Coupon code (if the customer reads one out)": "优惠券码（如顾客提供）", "Place order for the customer": "为顾客下单",
    "Choose at least one item.": "请至少选择一个餐品。", "Order placed.": "下单成功。",
    "Please check the order: a quantity or option is not valid.": "请检查订单：数量或规格无效。",
    "Read this code to the customer: the rider asks for it at the door": "请把取货码告诉顾客：骑手送达时会核对",
    "Send the customer this payment link:": "把这个支付链接发给顾客：", "Payment link": "支付链接",
    "Switch to cash on delivery": "改为货到付款", "Order page": "订单页面", "Next caller": "下一位来电",
    "This number belongs to a staff account, not a customer.": "该号码属于员工账号，不是顾客。",
    "Enter a phone number (digits, 6–15 long).": "请输入手机号（6–15 位数字）。",
    "Give the customer's name (1–80 characters).": "请填写顾客姓名（1–80 个字符）。",
    "Online payment is switched off for now (switch payment.cod_only): take cash on delivery.":
        "在线支付暂时关闭（开关 payment.cod_only）：请选择货到付款。",
    # reporting and tickets
    "Report a problem": "反馈问题", "Already reported": "已反馈", "What went wrong?": "遇到了什么问题？",
    "Tell us more (optional)": "补充说明（选填）", "Photo (optional, JPEG, PNG or WebP, up to %(n)s MB)":
        "照片（选填，JPEG、PNG 或 WebP，最大 %(n)s MB）", "Send report": "提交反馈",
    "Thank you: we have your report and will answer soon.": "感谢反馈，我们会尽快处理。",
    "My problem reports": "我的反馈", "Category": "类型", "Reported": "提交时间", "First response due": "首次响应截止",
    "Resolution due": "解决截止", "unresolved and resolved": "全部状态", "every category": "全部类型", "Filter": "筛选",
    "Overdue only": "只看超时", "No tickets.": "暂无工单。", "incident": "事件", "Ticket": "工单",
    "Ticket not found.": "找不到该工单。", "reported by": "提交人", "by phone": "电话", "Photo": "照片",
    "Part of incident": "所属事件", "How did we do?": "对处理结果满意吗？", "Add a message": "留言",
    "Internal note (staff only)": "内部备注（仅员工可见）", "Send": "发送", "Add photo": "添加照片", "Actions": "处理",
    "Take this ticket": "接手工单", "Refund": "退款", "Amount in yuan (empty: what is left of the online payment)":
        "金额（元，留空则退还在线支付的剩余金额）", "Re-deliver": "重新配送", "Re-deliver, paid by us": "重新配送（平台承担）",
    "Value in yuan (up to %(n)s)": "面额（元，最多 %(n)s）", "Minimum spend in yuan": "最低消费（元）", "Give coupon": "发放优惠券",
    "No action": "无需处理", "Why": "原因", "Close": "关闭", "Reopen": "重新打开", "Sent.": "已发送。",
    "Ticket taken.": "已接手工单。", "Ticket reopened.": "工单已重新打开。", "Ticket resolved.": "工单已解决。",
    "Photo added.": "照片已添加。", "Only support staff can do this.": "只有客服可以进行此操作。",
    "Please check the resolution's fields.": "请检查处理方式的填写内容。", "Enter an amount in yuan, e.g. 12.50.": "请输入金额（元），例如 12.50。",
    "Thank you for rating: %(n)s ★": "感谢评价：%(n)s ★", "Rate the order once it is delivered.": "订单送达后才能评价。",
    "Rate a ticket once it is resolved.": "工单解决后才能评价。", "Write something first.": "请先填写内容。",
    "A ticket takes at most 3 photos.": "每个工单最多 3 张照片。", "Send a JPEG, PNG or WebP photo.": "请上传 JPEG、PNG 或 WebP 照片。",
    "This file is not a readable JPEG, PNG or WebP photo.": "该文件不是可读取的 JPEG、PNG 或 WebP 照片。",
    "A photo may be at most 5 MB.": "照片最大 5 MB。", "This order is more than 7 days old; please call support.":
        "该订单已超过 7 天，请致电客服。",
    "Nothing was paid online for this order: resolve with a coupon or a re-delivery.":
        "该订单没有在线支付：请用优惠券或重新配送处理。",
    # ops satisfaction
    "Customer satisfaction": "顾客满意度", "days": "天", "Show": "查看", "Complaints per hour, last 48 hours": "最近 48 小时每小时投诉数",
    "Complaints per hour, incidents shaded": "每小时投诉数，阴影为事件", "Bars: complaint tickets per hour (peak %(n)s). Shaded: incidents.":
        "柱：每小时投诉工单数（峰值 %(n)s）。阴影：事件。", "Around incidents": "事件前后", "No incident in this range.": "该时间段没有事件。",
    "Linked tickets": "关联工单", "Complaints/h before": "事件前每小时投诉", "during": "事件中", "after": "事件后", "Per day": "每日",
    "Day": "日期", "Orders": "订单", "Complaints": "投诉", "Complaint rate": "投诉率", "Ratings": "评价数",
    "Average stars": "平均星级", "How was it?": "这单怎么样？", "Merchants": "商家", "Riders": "骑手", "Satisfaction": "满意度",
}
