"""The rider-pay pages' strings (earnings, payslips, /ops/payroll), merged into the catalogs by `catalog.py`."""

from __future__ import annotations

PREFIXED: dict[str, dict[str, tuple[str, str]]] = {
    "payline.": {"order": ("order", "订单"), "late": ("late", "超时"), "guarantee": ("minimum", "保底"),
                 "tip": ("tip", "小费"), "adjustment": ("adjustment", "调整")},
    "period.": {"preview": ("preview", "预估"), "draft": ("draft", "草稿"), "closed": ("closed", "已结算"),
                "paid": ("paid", "已发放")},
    "period_kind.": {"day": ("Day", "日"), "week": ("Week", "周")},
    "adjustment.": {"tip": ("tip", "小费"), "bonus": ("bonus", "奖励"), "deduction": ("deduction", "扣款"),
                    "correction": ("correction", "更正")},
}

ZH: dict[str, str] = {
    # the lines and the summary (_paylines.html)
    "Nothing yet.": "暂无。", "When": "时间", "What": "内容", "Distance": "距离", "Base": "基础", "Distance pay": "距离费",
    "Peak bonus": "高峰加价", "Amount": "金额", "late by %(minutes)s": "超时 %(minutes)s",
    "hourly minimum for %(hours)s on shift": "在岗 %(hours)s 的保底时薪", "Delivered orders": "送达订单", "Hours on shift": "在岗小时", "Delivery pay": "配送收入",
    "Hourly minimum top-up": "保底补足", "Tips": "小费", "Late penalties": "超时扣款", "Adjustments": "调整",
    # the rider's earnings and payslips
    "My earnings": "我的收入", "This week": "本周", "Week": "周",
    "Computed just now from your deliveries and shifts; final when the period closes.":
        "根据您的配送和在岗时间实时计算；结算后为最终金额。",
    "Every line of the week": "本周全部明细", "Payslip": "工资单", "Payslips": "工资单",
    "No payslip yet: they appear when ops compute a pay period.": "暂无工资单：运营计算结算周期后显示。",
    "Period": "周期", "Earnings": "收入", "Reference": "编号", "revision": "版本", "Lines": "明细",
    # /ops/payroll
    "Rider pay": "骑手薪酬", "Date": "日期", "Compute": "计算",
    "Computing is idempotent: the same deliveries, shifts and adjustments give the same payslips and write "
    "nothing; closed and paid periods never change. The pay cycle is":
        "计算是幂等的：相同的配送、班次和调整得到相同的工资单且不写入任何数据；已结算和已发放的周期不会再改变。发薪周期为",
    "payable": "应发放", "statement only": "仅对账单", "Close period": "结算周期", "Payout CSV": "发放批次 CSV",
    "Full account numbers, for the bank upload (audited)": "完整账号，用于银行上传（记入审计）",
    "Payout CSV, full accounts": "发放批次 CSV（完整账号）", "batch reference": "批次编号", "Mark paid": "标记为已发放",
    "Reconciled: %(lines)s order lines for %(orders)s delivered orders, rider by rider; every adjustment in place.":
        "已对账：%(orders)s 个送达订单对应 %(lines)s 条订单明细，逐个骑手一致；所有调整均已计入。",
    "Does not reconcile: %(lines)s order lines for %(orders)s delivered orders.":
        "对账不一致：%(orders)s 个送达订单对应 %(lines)s 条订单明细。",
    "missing": "缺少", "extra": "多出", "twice": "重复", "Adjustments missing": "缺少的调整",
    "Adjustments that do not belong": "不属于本周期的调整", "Totals that are not the sum of their lines": "合计与明细不符",
    "The period is closed: settle the difference with an adjustment (it goes into the next open period).":
        "该周期已结算：请用调整补差（计入下一个未结算周期）。",
    "Computed": "计算于", "closed": "结算于", "paid": "发放于", "Top-up": "保底补足", "Late": "超时",
    "No rider has pay in this period.": "本周期没有骑手收入。", "Periods": "结算周期", "No period computed yet.": "尚未计算任何周期。",
    "Adjustment": "调整", "Kind": "类型", "Amount (yuan, negative for a deduction)": "金额（元，扣款为负数）",
    "Order id (required for a tip)": "订单号（小费必填）", "Counts on (default today)": "计入日期（默认今天）",
    "Reason": "原因", "Record adjustment": "记录调整",
    "Adjustments are never edited or deleted; correct one with another. One aimed at a closed period counts on the "
    "first day after it.": "调整不可修改或删除，请用新的调整更正。计入已结算周期的调整会顺延到该周期后的第一天。",
    "asked for": "原定", "Pay rules": "薪酬规则", "Base per order (fen)": "每单基础（分）", "Per km (fen)": "每公里（分）",
    "Metres included": "包含米数", "Peak pay (percent of normal)": "高峰单价（正常的百分比）",
    "Hourly minimum (fen)": "保底时薪（分）", "Late after (minutes past the promise)": "超时判定（超过承诺时间的分钟数）",
    "Late penalty (fen)": "超时扣款（分）", "Peak windows (campus time)": "高峰时段（校园时间）", "Pay cycle": "发薪周期",
    "Save rules": "保存规则",
    "Per order: base + distance beyond the included metres, times the peak rate inside a window. Per day: at least "
    "the hourly minimum over the hours on shift. Tips, late penalties and adjustments on top.":
        "每单：基础 + 超出包含米数的距离费，高峰时段乘以高峰比例。每天：至少按在岗小时数获得保底时薪。小费、超时扣款和调整另计。",
    # flashes and errors (web/payroll.py, payroll/service.py)
    "That period is {status}: closed periods never change.": "该周期{status}：已结算的周期不会再改变。",
    "Computed: {w} payslip(s) written, {u} unchanged, {r} removed.": "已计算：写入 {w} 张工资单，{u} 张未变，删除 {r} 张。",
    "Period closed (payable: {payable}).": "周期已结算（应发放：{payable}）。", "yes": "是", "no": "否",
    "Marked paid.": "已标记为已发放。", "Adjustment recorded; it counts on {day}.": "调整已记录，计入 {day}。",
    "Give the amount in yuan, e.g. 12.50 or -5.": "请以元为单位填写金额，例如 12.50 或 -5。",
    "Pay rules saved; drafts use them from the next computation.": "薪酬规则已保存；草稿在下次计算时使用。",
    "That period has not started yet.": "该周期尚未开始。",
    "The period has not ended yet: orders delivered later would be left out.": "该周期尚未结束：之后送达的订单会被遗漏。",
    "The period does not reconcile with the delivered orders.": "该周期与送达订单对账不一致。",
    "Only a closed, payable period can be marked paid.": "只有已结算且应发放的周期才能标记为已发放。",
    "Give a reason (at least 3 characters).": "请填写原因（至少 3 个字）。",
    "Tips and bonuses are positive; use a deduction.": "小费和奖励为正数；扣款请选择扣款类型。",
    "A deduction is negative.": "扣款为负数。", "A tip needs an order this rider delivered.": "小费需要该骑手送达的订单。",
    "The order is not one this rider delivered.": "该订单不是此骑手送达的。", "No such rider.": "没有该骑手。",
    "No such payslip.": "没有该工资单。", "No such pay period.": "没有该结算周期。",
}
