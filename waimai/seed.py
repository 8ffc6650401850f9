"""The demo campus: realistic enough to click through, small enough to read."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from waimai.core.database import utcnow
from waimai.platform.accounts.models import Role, User
from waimai.platform.accounts.service import create_user
from waimai.platform.catalog.models import (
    Campus,
    CampusFeature,
    DeliveryPoint,
    MenuCategory,
    MenuItem,
    Merchant,
    Zone,
)
from waimai.platform.delivery.models import Rider

DEMO_PASSWORD = "waimai-demo"  # noqa: S105 - printed for the demo; refused in production seeding

DEMO_ACCOUNTS = {
    Role.customer: ("13800000001", "演示顾客 Demo Customer"),
    Role.merchant: ("13800000002", "演示商家 Demo Merchant"),
    Role.rider: ("13800000003", "演示骑手 Demo Rider"),
    Role.support: ("13800000004", "演示客服 Demo Support"),
    Role.ops: ("13800000009", "演示运维 Demo Ops"),
}

ZONES = {
    "北区宿舍 North dorms": [("北1栋", 300, 1400), ("北2栋", 420, 1420), ("北3栋", 540, 1440), ("北4栋", 660, 1460),
                         ("北5栋", 780, 1480), ("北6栋", 900, 1500), ("研究生公寓", 1050, 1520)],
    "南区宿舍 South dorms": [("南1栋", 300, 200), ("南2栋", 420, 180), ("南3栋", 540, 160), ("南4栋", 660, 140),
                         ("南5栋", 780, 120), ("留学生公寓", 900, 100)],
    "教学区 Teaching": [("第一教学楼", 1000, 800), ("第二教学楼", 1150, 850), ("图书馆", 1300, 800),
                       ("实验楼", 1450, 900), ("行政楼", 1600, 750)],
    "东门 East gate": [("东门快递柜", 1900, 800), ("体育馆", 1750, 1200), ("医务室", 1800, 400)],
}
LOCKERS = {"东门快递柜"}

# The demo campus's roads (centre lines) and named areas, in metres with y growing northwards.
ROADS = {
    "学府大道 Xuefu Ave": [(0, 980), (2000, 980)], "北环路 North Ring Rd": [(150, 1330), (1900, 1330)],
    "南环路 South Ring Rd": [(150, 290), (1900, 290)], "西林路 Xilin Rd": [(560, 60), (560, 1560)],
    "中轴路 Central Rd": [(1080, 60), (1080, 1560)], "东门路 East Gate Rd": [(1680, 290), (1680, 1330), (2000, 800)],
}
AREAS = {
    "北区宿舍 North dorms": [(240, 1360), (1130, 1360), (1130, 1580), (240, 1580)],
    "南区宿舍 South dorms": [(240, 40), (980, 40), (980, 260), (240, 260)],
    "美食街 Food street": [(600, 680), (960, 680), (960, 940), (600, 940)],
    "教学区 Teaching": [(960, 600), (1660, 600), (1660, 960), (960, 960)],
}
GREENS = [[(200, 420), (520, 420), (520, 900), (200, 900)], [(1720, 1000), (1960, 1000), (1960, 1300), (1720, 1300)]]


def _footprint(x: float, y: float, w: float = 90, h: float = 50) -> list[list[float]]:
    return [[x - w / 2, y], [x + w / 2, y], [x + w / 2, y + h], [x - w / 2, y + h]]

MERCHANTS = [
    ("兰州拉面 Lanzhou Noodles", "手工拉面，清汤牛肉", 700, 800, 10,
     {"面 Noodles": [("牛肉拉面", 1500), ("加肉拉面", 2000), ("炒拉条", 1800), ("凉面", 1200)],
      "小菜 Sides": [("卤蛋", 300), ("凉拌黄瓜", 600)],
      "饮品 Drinks": [("冰红茶", 300), ("酸梅汤", 500)]}),
    ("黄焖鸡米饭 Braised Chicken", "一人一锅，米饭管饱", 760, 840, 12,
     {"主食 Mains": [("黄焖鸡米饭", 1800), ("黄焖排骨饭", 2200), ("黄焖豆腐饭", 1400)],
      "加料 Extras": [("加土豆", 300), ("加金针菇", 400), ("米饭", 200)]}),
    ("麻辣烫 Malatang", "自选称重，骨汤底", 820, 780, 8,
     {"套餐 Sets": [("经典麻辣烫", 1600), ("全素麻辣烫", 1200), ("牛肉麻辣烫", 2200)],
      "饮品 Drinks": [("酸梅汤", 500), ("豆奶", 400)]}),
    ("沙县小吃 Shaxian Snacks", "蒸饺拌面，实惠快捷", 640, 760, 8,
     {"点心 Dim sum": [("蒸饺", 800), ("扁肉", 900), ("拌面", 700), ("飘香拌面加蛋", 1000)],
      "炖罐 Soups": [("乌鸡汤", 1200), ("排骨汤", 1100)]}),
    ("煎饼果子 Jianbing", "现摊现卖，早餐到夜宵", 1200, 1000, 6,
     {"煎饼 Jianbing": [("经典煎饼", 700), ("双蛋煎饼", 900), ("里脊煎饼", 1200)],
      "豆浆 Soy milk": [("甜豆浆", 300), ("咸豆浆", 400)]}),
    ("蜜雪冰城 Mixue", "冰淇淋与茶", 1100, 1100, 5,
     {"茶饮 Tea": [("柠檬水", 400), ("珍珠奶茶", 800), ("杨枝甘露", 1000)],
      "冰淇淋 Ice cream": [("冰淇淋", 300), ("圣代", 700)]}),
    ("重庆小面 Chongqing Noodles", "麻辣鲜香", 880, 700, 9,
     {"面 Noodles": [("重庆小面", 1100), ("豌杂面", 1400), ("牛肉面", 1800), ("酸辣粉", 1000)]}),
    ("饺子馆 Dumplings", "手工水饺", 1250, 650, 14,
     {"水饺 Dumplings": [("猪肉白菜水饺", 1500), ("韭菜鸡蛋水饺", 1400), ("三鲜水饺", 1800)],
      "凉菜 Cold dishes": [("拍黄瓜", 800), ("皮蛋豆腐", 900)],
      "汤 Soups": [("紫菜蛋花汤", 500), ("酸辣汤", 600)]}),
    ("湘菜小炒 Hunan Stir-fry", "现炒下饭菜", 950, 1250, 15,
     {"小炒 Stir-fry": [("小炒肉", 2400), ("剁椒鱼头饭", 2800), ("手撕包菜", 1500), ("农家一碗香", 2200)],
      "主食 Staples": [("米饭", 200)]}),
    ("轻食沙拉 Salad Bar", "低脂轻食", 1350, 1000, 7,
     {"沙拉 Salads": [("鸡胸肉沙拉", 2500), ("牛油果沙拉", 2800), ("金枪鱼沙拉", 2600)],
      "果汁 Juice": [("橙汁", 1200), ("西瓜汁", 1000)]}),
    ("校园烧烤 Campus BBQ", "夜宵首选", 1600, 1300, 18,
     {"烤串 Skewers": [("羊肉串(5串)", 1500), ("烤鸡翅", 1200), ("烤韭菜", 600), ("烤馒头片", 400)],
      "饮品 Drinks": [("啤酒", 600), ("可乐", 400)]}),
]

SPICE = {"name": "辣度 Spice", "required": True, "choices": [
    {"name": "不辣", "price_fen": 0}, {"name": "微辣", "price_fen": 0}, {"name": "特辣", "price_fen": 0}]}
SIZE = {"name": "份量 Size", "required": False, "choices": [{"name": "大份", "price_fen": 300}]}


@dataclass
class SeedReport:
    campus: str
    merchants: int
    items: int
    delivery_points: int
    riders: int
    accounts: dict[str, str]
    password: str


def is_empty(db: Session) -> bool:
    return (db.scalar(select(func.count()).select_from(Campus)) or 0) == 0


def seed_demo(db: Session, *, rng_seed: int = 7) -> SeedReport:
    """Create the demo campus in one transaction (the caller commits)."""
    rng = random.Random(rng_seed)
    campus = Campus(code="demo", name="示范大学 Demo University", width_m=2000, height_m=1600)
    db.add(campus)
    db.flush()
    n_points = 0
    for zname, points in ZONES.items():
        zone = Zone(campus_id=campus.id, name=zname)
        db.add(zone)
        db.flush()
        for pname, x, y in points:
            db.add(DeliveryPoint(campus_id=campus.id, zone_id=zone.id, name=pname, x=x, y=y,
                                 kind="locker" if pname in LOCKERS else ("teaching" if "楼" in pname and "栋"
                                                                         not in pname else "dorm")))
            n_points += 1
    for rname, line in ROADS.items():
        db.add(CampusFeature(campus_id=campus.id, kind="road", name=rname, points=[list(p) for p in line]))
    for aname, poly in AREAS.items():
        db.add(CampusFeature(campus_id=campus.id, kind="area", name=aname, points=[list(p) for p in poly]))
    for poly in GREENS:
        db.add(CampusFeature(campus_id=campus.id, kind="green", name="", points=[list(p) for p in poly]))
    for points in ZONES.values():
        for pname, x, y in points:  # each delivery point is a building's door, on its south side
            if pname not in LOCKERS:
                db.add(CampusFeature(campus_id=campus.id, kind="building", name=pname, points=_footprint(x, y)))
    n_items = 0
    merchants: list[Merchant] = []
    for idx, (name, desc, x, y, prep, menu) in enumerate(MERCHANTS):
        # Open round the clock in the demo so it can be clicked through at any hour; one keeps real hours.
        hours = ("10:00", "23:30") if idx == len(MERCHANTS) - 1 else ("00:00", "24:00")
        m = Merchant(campus_id=campus.id, name=name, description=desc, x=x, y=y, prep_minutes=prep,
                     opens_at=hours[0], closes_at=hours[1], rating=round(4.2 + rng.random() * 0.7, 1),
                     capacity=60)
        db.add(m)
        db.flush()
        merchants.append(m)
        for cpos, (cname, items) in enumerate(menu.items()):
            cat = MenuCategory(merchant_id=m.id, name=cname, position=cpos)
            db.add(cat)
            db.flush()
            for ipos, (iname, price) in enumerate(items):
                spicy = "面" in iname or "麻辣" in iname or "小炒" in iname
                options = [SPICE] if spicy else []
                if price >= 1500 and cpos == 0:
                    options = [*options, SIZE]
                stock = rng.choice([None, None, 50, 80]) if idx != 0 else None
                db.add(MenuItem(merchant_id=m.id, category_id=cat.id, name=iname, price_fen=price,
                                description="", position=ipos, options=options, stock=stock))
                n_items += 1
    accounts: dict[str, str] = {}
    for role, (phone, uname) in DEMO_ACCOUNTS.items():
        create_user(db, phone=phone, name=uname, role=role, password=DEMO_PASSWORD,
                    merchant_id=merchants[0].id if role is Role.merchant else None)
        accounts[role.value] = phone
    demo_rider_user = db.scalar(select(User).where(User.phone == DEMO_ACCOUNTS[Role.rider][0]))
    assert demo_rider_user is not None
    now = utcnow()
    import datetime as dt

    riders = [Rider(user_id=demo_rider_user.id, campus_id=campus.id, name=demo_rider_user.name, on_shift=True,
                    shift_started_at=now, shift_ends_at=now + dt.timedelta(hours=8), x=800, y=800)]
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何"
    for i in range(15):
        u = create_user(db, phone=f"1390000{i:04d}", name=f"{surnames[i]}师傅", role=Role.rider,
                        password=DEMO_PASSWORD)
        riders.append(Rider(user_id=u.id, campus_id=campus.id, name=u.name, vehicle=rng.choice(["ebike", "bike"]),
                            x=rng.uniform(200, 1800), y=rng.uniform(100, 1500)))
    db.add_all(riders)
    db.flush()
    return SeedReport(campus=campus.name, merchants=len(merchants), items=n_items, delivery_points=n_points,
                      riders=len(riders), accounts=accounts, password=DEMO_PASSWORD)
