"""The database-outage pages' strings (spooled orders, last-known notices, the ops spool card), merged into the
catalogs by `catalog.py`."""

from __future__ import annotations

ZH: dict[str, str] = {
    "Order received, confirming": "订单已收到，待确认",
    "Received, confirming": "待确认",
    "cash on delivery": "货到付款",
    "Our database is unavailable; your order is kept safely and confirmed or refused within minutes of its "
    "return. You will get a notice either way.": "我们的数据库暂时不可用；您的订单已妥善保存，恢复后几分钟内确认或退回，结果都会通知您。",
    "Follow it": "查看进度",
    "Our database is unavailable: choose cash on delivery, and we confirm the order as soon as it is back.":
        "数据库暂时不可用：请选择货到付款，恢复后我们会立即确认订单。",
    "This server does not hold that order. If you placed it during the outage, it is confirmed or refused within "
    "minutes of the database's return, and a notice tells you which.":
        "本服务器上没有这笔订单。如果是故障期间提交的，数据库恢复后几分钟内会确认或退回，并通知您结果。",
    "Not confirmed": "未能确认",
    "Confirmed": "已确认",
    "received at": "收到于",
    "We are sorry: this order could not be confirmed and you will not be charged.": "非常抱歉：这笔订单未能确认，不会向您收费。",
    "Order again": "重新下单",
    "item": "菜品",
    "Our database is unavailable: these are the notices we last saw for you": "数据库暂时不可用：以下是您最近的通知",
    "New notices appear when it is back.": "恢复后会显示新通知。",
    "The database is unreachable: pages show last-known state and cash-on-delivery orders wait in each "
    "replica's spool.": "数据库无法连接：页面显示最近已知状态，货到付款订单暂存在各副本的本地队列中。",
    "Orders received during a database outage (this replica)": "数据库故障期间收到的订单（本副本）",
    "oldest waiting": "最早等待",
    "Reference": "编号",
}
