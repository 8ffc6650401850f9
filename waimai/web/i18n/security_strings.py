"""Strings of the authentication and data controls (proof-code limits, passwords), merged by `catalog.py`."""

from __future__ import annotations

ZH: dict[str, str] = {
    "The proof code does not match; ask the customer for the 4 digits on their order page.":
    "取货码不正确，请向顾客确认订单页上的 4 位数字。",
    "Too many wrong proof codes for this order: it is locked. Call customer support to finish the delivery.":
    "该订单取货码错误次数过多，已锁定。请致电客服完成送达。",
    "Too many wrong proof codes in the last hour: proof entry is locked for your account. Call customer support.":
    "一小时内取货码错误次数过多，您的取货码输入已锁定。请致电客服。",
    "The password needs at least 8 characters.": "密码至少需要 8 个字符。",
    "This password is too common; choose one that is hard to guess.": "该密码过于常见，请选择难以猜到的密码。",
    "The password must not contain your phone number.": "密码不能包含您的手机号。",
}
