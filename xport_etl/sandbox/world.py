"""The sandbox's deterministic world of Xportcn orders, moving with a simulated clock.

The world is a set of *plans*: for every order, when it is created and when its status changes.
What the API shows at simulated time ``T`` is derived from the plans and ``T`` alone, so a world
advanced to ``T`` and a world read at ``T`` agree, whatever path the clock took.

Layout, so that later entities (refunds, parcels, 1688 orders) slot in beside the Taobao orders:

- ``WorldConfig`` holds the knobs; ``World`` owns the clock, the lock and one store per entity.
- ``TaobaoOrderStore`` keeps the compact plans (flat ``array`` columns, no per-order objects),
  generates them chunk by chunk as the clock moves forward, and answers queries.
- ``TaobaoOrderDetail``/``TaobaoLineDetail`` are the static facts of one order, regenerated on
  demand from a per-order random stream (and cached), so a world of a million orders stays small.
- ``render_taobao_order`` is the one place that turns plans into the wire format (CONTRACT §5.1),
  including the contract's awkward cases (ids as numbers, money as strings or numbers, nulls).

Times: the clock and plans are UTC epoch milliseconds/seconds internally; the wire shows China
Standard Time strings (fixed UTC+8, no offset).
"""

from __future__ import annotations

import bisect
import json
import random
import re
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

CST = timezone(timedelta(hours=8), "CST")
CST_OFFSET_S = 8 * 3600
CST_FORMAT = "%Y-%m-%d %H:%M:%S"
_CST_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DAY_MS = 86_400_000

# mybatis-plus / twitter snowflake epoch: ids from it look like the documented 19-digit ids
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657

# taobao order status codes (CONTRACT §5.1)
BUILDING, AWAITING_PAYMENT, PROOF_UPLOADED, FINANCE_APPROVED = 12, 0, 1, 2
FINANCE_REJECTED, CANCELLED, AWAITING_FINANCE_PAY, OTHER = 3, 4, 5, 9
PAID_AWAITING_SHIPMENT, SHIPPED = 10, 11
REFUND_NONE = 0


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of a sandbox world. Same config, same world.

    Attributes:
        seed: seed of every random stream in the world.
        orders: Taobao orders created in ``[start, clock)``; after ``clock`` orders keep being
            created at the same mean rate, one day-sized chunk at a time.
        start: when the world begins (tz-aware).
        clock: the initial simulated "now" (tz-aware); it also fixes the order rate.
        awkward: share of records showing each of the contract's awkward cases (ids as JSON
            numbers, money as strings, quantity as a string, null sub-order status, ...).
        catalog_size: number of distinct Taobao products orders are drawn from.
        detail_cache: orders whose static details are kept in memory.
    """

    seed: int = 7
    orders: int = 2000
    start: datetime = datetime(2026, 1, 1, tzinfo=CST)
    clock: datetime = datetime(2026, 7, 1, tzinfo=CST)
    awkward: float = 0.1
    catalog_size: int = 3000
    detail_cache: int = 65_536

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.clock.tzinfo is None:
            raise ValueError("WorldConfig.start and .clock must be timezone-aware")
        if self.clock <= self.start:
            raise ValueError("WorldConfig.clock must be after .start")
        if self.orders < 0:
            raise ValueError("WorldConfig.orders must be >= 0")
        if not 0.0 <= self.awkward <= 1.0:
            raise ValueError("WorldConfig.awkward must be within [0, 1]")


# ---------------------------------------------------------------------------------------------
# time and number helpers


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of a tz-aware datetime."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: pass a timezone-aware one")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """Tz-aware UTC datetime of epoch milliseconds."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def cst_text(epoch_s: int) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China Standard Time, as the API writes times."""
    return time.strftime(CST_FORMAT, time.gmtime(epoch_s + CST_OFFSET_S))


def parse_cst(text: str) -> int:
    """Epoch seconds of a ``yyyy-MM-dd HH:mm:ss`` CST string; ValueError if malformed."""
    if not _CST_RE.fullmatch(text):
        raise ValueError(f"not a yyyy-MM-dd HH:mm:ss time: {text!r}")
    dt = datetime.strptime(text, CST_FORMAT).replace(tzinfo=CST)
    return to_ms(dt) // 1000


def money(cents: int, style: int) -> str | Decimal:
    """Wire form of an amount: 0 "12.50", 1 12.50, 2 12.5 (shortest number), 3 "12.5"."""
    whole, frac = divmod(cents, 100)
    if style in (2, 3):
        if frac == 0:
            text = str(whole)
        elif frac % 10 == 0:
            text = f"{whole}.{frac // 10}"
        else:
            text = f"{whole}.{frac:02d}"
    else:
        text = f"{whole}.{frac:02d}"
    return text if style in (0, 3) else Decimal(text)


def _scramble(n: int, mult: int, mod: int = 10**11) -> int:
    """A bijection of ``[0, mod)``: unique ids that do not look sequential."""
    return (n * mult + 12_345_678_901) % mod


# ---------------------------------------------------------------------------------------------
# word lists for realistic data

_PREFIXES = [
    "2026新款",
    "2026春季新款",
    "夏季新款",
    "爆款",
    "ins风",
    "网红同款",
    "韩版",
    "日系",
    "国潮",
    "工厂直销",
    "现货速发",
    "简约",
    "复古",
    "加大码",
]
_CATEGORIES: list[tuple[list[str], list[str], list[str], list[str], tuple[int, int]]] = [
    # (materials, nouns, audiences, attributes, unit price range in cents)
    (
        ["纯棉", "莫代尔", "冰丝", "重磅", "亚麻", "针织", "华夫格"],
        [
            "短袖T恤",
            "长袖衬衫",
            "连帽卫衣",
            "POLO衫",
            "连衣裙",
            "半身裙",
            "阔腿裤",
            "牛仔裤",
            "运动短裤",
            "针织开衫",
            "防晒衣",
            "打底衫",
        ],
        ["男", "女", "男女同款", "情侣款", "儿童"],
        [
            "宽松",
            "修身",
            "oversize",
            "白色",
            "黑色",
            "灰色",
            "卡其色",
            "藏青色",
            "雾霾蓝",
            "奶油色",
            "均码",
            "S-XXL",
        ],
        (1990, 25900),
    ),
    (
        ["真皮", "帆布", "PU", "尼龙", "飞织"],
        ["运动鞋", "帆布鞋", "老爹鞋", "凉拖鞋", "双肩包", "斜挎包", "托特包", "钱包", "腰包"],
        ["男", "女", "学生", "通勤"],
        ["轻便", "防水", "大容量", "黑色", "米白色", "棕色", "36-44码"],
        (2990, 39900),
    ),
    (
        ["不锈钢", "硅胶", "实木", "陶瓷", "玻璃", "PP", "竹制"],
        [
            "收纳盒",
            "保温杯",
            "置物架",
            "挂钩",
            "餐具套装",
            "抱枕",
            "四件套",
            "香薰机",
            "密封罐",
            "衣架",
        ],
        ["家用", "宿舍", "厨房", "卫生间", "办公室"],
        ["免打孔", "大号", "加厚", "北欧风", "奶白色", "套装", "10个装"],
        (390, 18900),
    ),
    (
        ["TPU", "液态硅胶", "磁吸", "铝合金", "编织"],
        [
            "手机壳",
            "数据线",
            "充电宝",
            "蓝牙耳机",
            "手机支架",
            "快充头",
            "钢化膜",
            "键盘",
            "鼠标垫",
        ],
        ["适用苹果15", "适用华为", "适用小米", "Type-C", "通用"],
        ["防摔", "透明", "20W", "10000毫安", "降噪", "1米", "2米", "黑色"],
        (590, 29900),
    ),
    (
        ["水润", "哑光", "丝绒", "保湿", "控油"],
        ["口红", "面膜", "粉底液", "化妆刷", "眼影盘", "洗面奶", "防晒霜", "护手霜"],
        ["女", "学生党", "敏感肌"],
        ["持久", "不脱色", "小样", "礼盒装", "补水", "5片装"],
        (990, 15900),
    ),
    (
        ["毛绒", "ABS", "木质", "益智"],
        ["积木", "拼图", "毛绒玩具", "遥控车", "过家家玩具", "磁力片", "泡泡机"],
        ["儿童", "宝宝", "3-6岁", "男孩", "女孩"],
        ["生日礼物", "早教", "大颗粒", "可水洗", "网红"],
        (1290, 19900),
    ),
]
_SOURCES = ["lazada", "shopee", "tiktok", "shopify"]
_SOURCE_WEIGHTS = [35, 40, 15, 10]
_WAREHOUSES = [
    # (name, address, state, city, district, zip, weight)
    (
        "义乌集运仓",
        "浙江省金华市义乌市北苑街道春晗路88号跨境物流园3号库",
        "浙江省",
        "金华市",
        "义乌市",
        "322000",
        40,
    ),
    (
        "广州白云仓",
        "广东省广州市白云区太和镇大源北路12号华南国际仓B栋",
        "广东省",
        "广州市",
        "白云区",
        "510450",
        30,
    ),
    (
        "深圳龙华仓",
        "广东省深圳市龙华区民治街道工业东路6号海外仓2楼",
        "广东省",
        "深圳市",
        "龙华区",
        "518131",
        20,
    ),
    (
        "东莞虎门仓",
        "广东省东莞市虎门镇龙眼工业区三路21号",
        "广东省",
        "东莞市",
        "虎门镇",
        "523900",
        10,
    ),
]
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭"
_GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "子涵",
    "浩然",
    "一诺",
]
_CARRIERS = [
    # (name, tracking prefix)
    ("中通快递", "78"),
    ("圆通速递", "YT"),
    ("韵达快递", "43"),
    ("顺丰速运", "SF"),
    ("申通快递", "77"),
    ("极兔速递", "JT"),
]
_CARRIER_WEIGHTS = [30, 22, 18, 8, 12, 10]
# hour-of-day (CST) weights of order creation: quiet nights, busy mornings and evenings
_HOUR_WEIGHTS = [3, 2, 1, 1, 1, 1, 2, 4, 6, 8, 10, 10, 8, 9, 10, 10, 9, 8, 8, 9, 10, 10, 8, 5]
_HOUR_MAX = max(_HOUR_WEIGHTS)


@dataclass(frozen=True, slots=True)
class Product:
    item_id: str
    title: str
    sku_ids: tuple[str, ...]
    price_cents: int


def _make_catalog(seed: int, size: int) -> list[Product]:
    rng = random.Random(f"{seed}/catalog")
    products = []
    for k in range(max(size, 1)):
        materials, nouns, audiences, attributes, (lo, hi) = rng.choice(_CATEGORIES)
        words = [
            rng.choice(_PREFIXES),
            rng.choice(materials),
            rng.choice(nouns),
            rng.choice(audiences),
            *rng.sample(attributes, 2),
        ]
        # log-uniform price between the category's bounds, ending in 0 or 9 like real shops
        price = int(lo * (hi / lo) ** rng.random())
        price = price - price % 10 + rng.choice((0, 0, 9))
        item_id = str(600_000_000_000 + _scramble(k, 7_919_337_731, 10**11))
        skus = tuple(
            str(4_000_000_000_000 + _scramble(k * 16 + s, 5_915_587_277, 10**12))
            for s in range(rng.choice((1, 1, 2, 3, 4, 6)))
        )
        products.append(Product(item_id, " ".join(words), skus, max(price, 100)))
    return products


# ---------------------------------------------------------------------------------------------
# taobao order plans


@dataclass(frozen=True, slots=True)
class TaobaoLineDetail:
    """Static facts of one sub-order (its changing state comes from the order's plan)."""

    sub_order_id: int
    item_id: str
    sku_id: str
    title: str
    quantity: int
    amount_cents: int
    post_fee_cents: int
    purchase_id: str
    sub_purchase_id: str
    shop: int  # index of the taobao shop (purchase) inside the order
    carrier: int
    tracking_number: str
    # awkward wire forms
    id_as_number: bool
    quantity_as_text: bool
    money_style: int


@dataclass(frozen=True, slots=True)
class TaobaoOrderDetail:
    """Static facts of one Taobao order."""

    index: int
    order_id: int
    order_no: str
    create_ms: int
    order_source: str
    seller_order_number: str
    warehouse: int
    receiver: str  # already JSON text, as on the wire
    lines: tuple[TaobaoLineDetail, ...]
    close_reason_pick: int
    # awkward wire forms
    id_as_number: bool
    money_style: int
    warehouse_address_null: bool
    line_status_null: bool

    @property
    def amount_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def post_fee_cents(self) -> int:
        return sum(line.post_fee_cents for line in self.lines)


@dataclass(frozen=True, slots=True)
class TaobaoOrderState:
    """What a plan says about an order at one instant."""

    status: int
    update_s: int
    pay_s: int | None
    previous_status: int | None  # the status before the current one (close reasons)


def _lifecycle(rng: random.Random, create_s: int) -> list[tuple[int, int]]:
    """Status transitions ``(epoch_s, status)`` of one order, from creation on."""
    t = create_s
    out = [(t, BUILDING)]

    def step(lo: int, hi: int, status: int, mean: float | None = None) -> None:
        nonlocal t
        if mean is None:
            delay = rng.randint(lo, hi)
        else:
            delay = min(hi, max(lo, int(rng.expovariate(1 / mean))))
        t += max(1, delay)
        out.append((t, status))

    if rng.random() < 0.004:  # stuck in building
        return out
    step(3, 180, AWAITING_PAYMENT)
    u = rng.random()
    if u < 0.07:  # never paid: auto-closed after a few days, a few stay unpaid
        if rng.random() < 0.15:
            return out
        step(86_400, 5 * 86_400, CANCELLED)
        return out
    if u < 0.10:  # the merchant cancels soon after creating
        step(300, 12 * 3600, CANCELLED)
        return out
    if u < 0.16:  # credit account: finance pays directly
        step(60, 4 * 3600, AWAITING_FINANCE_PAY)
        step(600, 3 * 86_400, FINANCE_APPROVED, mean=8 * 3600)
    else:
        step(60, 5 * 86_400, PROOF_UPLOADED, mean=8 * 3600)
        if rng.random() < 0.07:  # finance rejects the proof; usually a new one is uploaded
            step(3600, 12 * 3600, FINANCE_REJECTED)
            if rng.random() < 0.1:
                step(86_400, 3 * 86_400, CANCELLED)
                return out
            step(1800, 2 * 86_400, PROOF_UPLOADED, mean=10 * 3600)
        step(600, 86_400, FINANCE_APPROVED, mean=4 * 3600)
    step(60, 3 * 3600, PAID_AWAITING_SHIPMENT)
    v = rng.random()
    if v < 0.03:  # out of stock
        step(86_400, 5 * 86_400, CANCELLED)
    elif v < 0.04:
        step(86_400, 10 * 86_400, OTHER)
    elif v < 0.09:  # stuck awaiting shipment for weeks, some for good
        if rng.random() < 0.7:
            step(20 * 86_400, 60 * 86_400, SHIPPED)
    else:
        # mostly 1-3 days, a tail up to 10 days
        delay = int(3600 * 24 * min(10.0, max(0.05, rng.lognormvariate(0.6, 0.6))))
        step(delay, delay, SHIPPED)
    return out


class TaobaoOrderStore:
    """Plans of every Taobao order, as flat columns sorted by creation time.

    Column ``i`` of every array describes the order with global index ``i``; creation times are
    distinct milliseconds, so sorting by them equals the API's (createTime, id) order.
    """

    ENTITY_TAG = 1

    def __init__(self, config: WorldConfig, catalog: list[Product]) -> None:
        self.config = config
        self._catalog = catalog
        self._start_ms = to_ms(config.start)
        self._first_end_ms = to_ms(config.clock)
        self._day_mean = config.orders * DAY_MS / (self._first_end_ms - self._start_ms)
        self.create_ms = array("q")
        self.trans_off = array("q", [0])  # transitions of order i: trans_*[off[i]:off[i+1]]
        self.trans_t = array("q")
        self.trans_s = array("b")
        self.generated_until_ms = self._start_ms
        self._chunks = 0
        self._state_cache: tuple[int, array, array] | None = None
        self._select_cache: dict[tuple, list[int]] = {}
        self.detail = lru_cache(maxsize=config.detail_cache)(self._make_detail)

    # -- generation ------------------------------------------------------------------------

    def ensure(self, clock_ms: int) -> None:
        """Generate chunks until every order created at or before ``clock_ms`` exists."""
        while self.generated_until_ms <= clock_ms:
            self._generate_chunk()

    def _generate_chunk(self) -> None:
        k = self._chunks
        rng = random.Random(f"{self.config.seed}/taobao/chunk/{k}")
        if k == 0:
            lo, hi, count = self._start_ms, self._first_end_ms, self.config.orders
        else:
            lo = self._first_end_ms + (k - 1) * DAY_MS
            hi = lo + DAY_MS
            x = self._day_mean * rng.uniform(0.8, 1.2)
            count = int(x) + (1 if rng.random() < x - int(x) else 0)
        chosen: set[int] = set()
        while len(chosen) < count:
            ms = rng.randrange(lo, hi)
            hour = ((ms // 1000 + CST_OFFSET_S) // 3600) % 24
            if rng.random() * _HOUR_MAX < _HOUR_WEIGHTS[hour]:
                chosen.add(ms)
        for ms in sorted(chosen):
            self.create_ms.append(ms)
            for t, s in _lifecycle(rng, ms // 1000):
                self.trans_t.append(t)
                self.trans_s.append(s)
            self.trans_off.append(len(self.trans_t))
        self.generated_until_ms = hi
        self._chunks += 1

    def _make_detail(self, i: int) -> TaobaoOrderDetail:
        cfg = self.config
        rng = random.Random((cfg.seed << 40) ^ (self.ENTITY_TAG << 36) ^ i)
        aw = cfg.awkward
        create_ms = self.create_ms[i]
        order_id = ((create_ms - SNOWFLAKE_EPOCH_MS) << 22) | ((i % 1024) << 12)
        order_no = time.strftime("%y%m%d%H%M%S", time.gmtime(create_ms // 1000 + CST_OFFSET_S))
        order_no += f"{i % 1_000_000:06d}"
        source = rng.choices(_SOURCES, _SOURCE_WEIGHTS)[0]
        seller_no = _seller_order_number(rng, source, create_ms)
        wh = rng.choices(range(len(_WAREHOUSES)), [w[-1] for w in _WAREHOUSES])[0]
        receiver = _receiver_json(rng, wh, aw)

        # sub-orders: mostly 1-3, a long tail up to 40
        if rng.random() < 0.02:
            n_lines = rng.randint(8, 40)
        else:
            n_lines = 1
            while n_lines < 40 and rng.random() < 0.42:
                n_lines += 1
        # lines grouped by taobao shop (one purchase id per shop), shops numbered 0, 1, ...
        n_shops = 1 + int(rng.random() * min(n_lines, 4))
        drawn = sorted(rng.randrange(n_shops) for _ in range(n_lines))
        renumber = {s: k for k, s in enumerate(dict.fromkeys(drawn))}
        shop_of = [renumber[s] for s in drawn]
        n_shops = len(renumber)
        carriers = [rng.choices(range(len(_CARRIERS)), _CARRIER_WEIGHTS)[0] for _ in range(n_shops)]
        post_fees = [
            0 if rng.random() < 0.6 else rng.choice((300, 400, 500, 600, 800, 1000, 1200, 1500))
            for _ in range(n_shops)
        ]
        lines = []
        seen_shop: set[int] = set()
        for n in range(n_lines):
            product = self._catalog[rng.randrange(len(self._catalog))]
            q = rng.random()
            quantity = 1 if q < 0.7 else rng.randint(2, 5) if q < 0.95 else rng.randint(6, 200)
            shop = shop_of[n]
            first_of_shop = shop not in seen_shop
            seen_shop.add(shop)
            carrier = carriers[shop]
            tracking_digits = f"{_scramble(i * 8 + shop, 3_367_900_313, 10**12):012d}"
            lines.append(
                TaobaoLineDetail(
                    sub_order_id=order_id | (n + 1),
                    item_id=product.item_id,
                    sku_id=rng.choice(product.sku_ids),
                    title=product.title,
                    quantity=quantity,
                    amount_cents=product.price_cents * quantity,
                    post_fee_cents=post_fees[shop] if first_of_shop else 0,
                    purchase_id=str(200_000_000_000 + _scramble(i * 8 + shop, 2_654_435_761)),
                    sub_purchase_id=str(300_000_000_000 + _scramble(i * 64 + n, 1_597_334_677)),
                    shop=shop,
                    carrier=carrier,
                    tracking_number=_CARRIERS[carrier][1] + "3" + tracking_digits,
                    id_as_number=rng.random() < aw,
                    quantity_as_text=rng.random() < aw,
                    money_style=_money_style(rng, aw),
                )
            )
        return TaobaoOrderDetail(
            index=i,
            order_id=order_id,
            order_no=order_no,
            create_ms=create_ms,
            order_source=source,
            seller_order_number=seller_no,
            warehouse=wh,
            receiver=receiver,
            lines=tuple(lines),
            close_reason_pick=rng.randrange(1000),
            id_as_number=rng.random() < aw,
            money_style=_money_style(rng, aw),
            warehouse_address_null=rng.random() < aw / 2,
            line_status_null=rng.random() < aw / 2,
        )

    # -- state at a clock ------------------------------------------------------------------

    def count_visible(self, clock_ms: int) -> int:
        """Number of orders created at or before ``clock_ms``."""
        return bisect.bisect_right(self.create_ms, clock_ms)

    def state(self, i: int, clock_ms: int) -> TaobaoOrderState:
        lo, hi = self.trans_off[i], self.trans_off[i + 1]
        now_s = clock_ms // 1000
        j = bisect.bisect_right(self.trans_t, now_s, lo, hi) - 1
        pay_s = None
        for k in range(lo, j + 1):
            if self.trans_s[k] == FINANCE_APPROVED:
                pay_s = self.trans_t[k]
                break
        return TaobaoOrderState(
            status=self.trans_s[j],
            update_s=self.trans_t[j],
            pay_s=pay_s,
            previous_status=self.trans_s[j - 1] if j > lo else None,
        )

    def states(self, clock_ms: int) -> tuple[array, array]:
        """Status and update time (epoch s) of every visible order; cached per clock."""
        cached = self._state_cache
        if cached is not None and cached[0] == clock_ms:
            return cached[1], cached[2]
        n = self.count_visible(clock_ms)
        now_s = clock_ms // 1000
        off, tt, ts = self.trans_off, self.trans_t, self.trans_s
        status, update = array("b", bytes(n)), array("q", bytes(8 * n))
        for i in range(n):
            lo, hi = off[i], off[i + 1]
            j = hi - 1
            if tt[j] > now_s:
                j = bisect.bisect_right(tt, now_s, lo, hi) - 1
            status[i] = ts[j]
            update[i] = tt[j]
        self._state_cache = (clock_ms, status, update)
        return status, update

    def select(
        self,
        clock_ms: int,
        *,
        status: int | None = None,
        create_start_s: int | None = None,
        create_end_s: int | None = None,
        update_start_s: int | None = None,
        update_end_s: int | None = None,
        order_no: str | None = None,
    ) -> list[int] | range:
        """Indices of the visible orders matching the filters, newest first."""
        hi = self.count_visible(clock_ms)
        lo = 0
        if create_start_s is not None:
            lo = max(lo, bisect.bisect_left(self.create_ms, create_start_s * 1000, 0, hi))
        if create_end_s is not None:
            hi = min(hi, bisect.bisect_left(self.create_ms, create_end_s * 1000, 0, hi))
        if order_no is not None:
            found = self.find_order_no(order_no, clock_ms)
            return [found] if found is not None and lo <= found < hi else []
        if hi <= lo:
            return []
        if status is None and update_start_s is None and update_end_s is None:
            return range(hi - 1, lo - 1, -1)
        # a pipeline pages through one filter many times: keep the last few selections
        key = (clock_ms, lo, hi, status, update_start_s, update_end_s)
        selected = self._select_cache.get(key)
        if selected is None:
            statuses, updates = self.states(clock_ms)
            u_lo = update_start_s if update_start_s is not None else -(2**62)
            u_hi = update_end_s if update_end_s is not None else 2**62
            selected = [
                i
                for i in range(hi - 1, lo - 1, -1)
                if (status is None or statuses[i] == status) and u_lo <= updates[i] < u_hi
            ]
            if len(self._select_cache) >= 32:
                self._select_cache.pop(next(iter(self._select_cache)))
            self._select_cache[key] = selected
        return selected

    def find_order_id(self, order_id: str, clock_ms: int) -> int | None:
        """Index of the visible order with this xportcn id."""
        if not order_id.isdigit() or len(order_id) > 19:
            return None
        ms = (int(order_id) >> 22) + SNOWFLAKE_EPOCH_MS
        i = bisect.bisect_left(self.create_ms, ms, 0, self.count_visible(clock_ms))
        found = i < len(self.create_ms) and self.create_ms[i] == ms
        return i if found and self.detail(i).order_id == int(order_id) else None

    def find_order_no(self, order_no: str, clock_ms: int) -> int | None:
        """Index of the visible order with this order number."""
        if len(order_no) != 18 or not order_no.isdigit():
            return None
        try:
            when = datetime.strptime(order_no[:12], "%y%m%d%H%M%S").replace(tzinfo=CST)
        except ValueError:
            return None
        sec_ms = to_ms(when)
        hi = self.count_visible(clock_ms)
        lo = bisect.bisect_left(self.create_ms, sec_ms, 0, hi)
        end = bisect.bisect_left(self.create_ms, sec_ms + 1000, 0, hi)
        for i in range(lo, end):
            if i % 1_000_000 == int(order_no[12:]):
                return i
        return None


def _money_style(rng: random.Random, aw: float) -> int:
    # mostly numbers with two decimals; the awkward share spread over the other forms
    r = rng.random()
    if r >= aw * 3:
        return 1
    return (0, 2, 3)[int(r / aw) if aw else 0]


def _seller_order_number(rng: random.Random, source: str, create_ms: int) -> str:
    day = time.strftime("%y%m%d", time.gmtime(create_ms // 1000 + CST_OFFSET_S))
    if source == "shopee":
        return day + "".join(rng.choices("0123456789ABCDEFGHJKMNPQRSTUVWXYZ", k=8))
    if source == "lazada":
        return str(rng.randrange(10**14, 10**15))
    if source == "tiktok":
        return "57" + str(rng.randrange(10**15, 10**16))
    return f"#{rng.randrange(1001, 99999)}"


def _receiver_json(rng: random.Random, wh: int, aw: float) -> str:
    name, address, state, city, district, zip_code, _ = _WAREHOUSES[wh]
    member = f"XP{rng.randrange(10000, 99999)}"
    person = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
    phone = f"1{rng.choice('3456789')}{rng.randrange(10**8, 10**9)}"
    receiver = {
        "zip": zip_code,
        "country": "中国",
        "address": f"{address}({member})",
        "city": city,
        "phone": phone,
        "mobile_phone": phone if rng.random() >= aw else None,
        "district": district,
        "name": f"{person}({member})",
        "state": state,
    }
    return json.dumps(receiver, ensure_ascii=False, separators=(",", ":"))


_CLOSE_REASONS = {
    AWAITING_PAYMENT: ["超时未支付，系统自动关闭", "买家取消订单", "商户取消订单"],
    FINANCE_REJECTED: ["支付凭证审核未通过，订单关闭"],
    PAID_AWAITING_SHIPMENT: ["卖家缺货，订单关闭", "商品已下架，订单关闭", "卖家无法发货，已退款"],
}


def close_reason(detail: TaobaoOrderDetail, state: TaobaoOrderState) -> str | None:
    """The order's ``closeReason`` (null unless cancelled, and on a few cancelled ones)."""
    if state.status != CANCELLED or detail.close_reason_pick < 30:
        return None
    reasons = _CLOSE_REASONS.get(state.previous_status or 0, _CLOSE_REASONS[AWAITING_PAYMENT])
    return reasons[detail.close_reason_pick % len(reasons)]


def line_refund_status(line: TaobaoLineDetail, state: TaobaoOrderState, clock_ms: int) -> int:
    """Refund status of a line at the clock (refunds arrive in a later issue: always none)."""
    return REFUND_NONE


def render_taobao_order(detail: TaobaoOrderDetail, state: TaobaoOrderState, clock_ms: int) -> dict:
    """The ``TaoBaoOrderVO`` of an order at the clock, exactly as the API sends it."""
    wh = _WAREHOUSES[detail.warehouse]
    shipped = state.status == SHIPPED
    cancelled = state.status == CANCELLED
    line_status = None if detail.line_status_null else state.status
    reason = close_reason(detail, state)
    subs = []
    for line in detail.lines:
        out_of_stock = cancelled and state.previous_status == PAID_AWAITING_SHIPMENT
        subs.append(
            {
                "subOrderId": line.sub_order_id if line.id_as_number else str(line.sub_order_id),
                "orderNo": detail.order_no,
                "itemId": line.item_id,
                "skuId": line.sku_id,
                "title": line.title,
                "quantity": str(line.quantity) if line.quantity_as_text else line.quantity,
                "purchaseAmount": money(line.amount_cents, line.money_style),
                "purchaseCurrency": "CNY",
                "domesticPostFee": money(line.post_fee_cents, line.money_style),
                "status": line_status,
                "refundStatus": line_refund_status(line, state, clock_ms),
                "taobaoPurchaseId": line.purchase_id,
                "taobaoSubPurchaseId": line.sub_purchase_id,
                "closeReason": reason,
                "errorCode": "SELLER_OUT_OF_STOCK" if out_of_stock else None,
                "errorMessage": "卖家缺货" if out_of_stock else None,
                "logisticCompanyName": _CARRIERS[line.carrier][0] if shipped else None,
                "logisticNumber": line.tracking_number if shipped else None,
            }
        )
    return {
        "id": detail.order_id if detail.id_as_number else str(detail.order_id),
        "orderNo": detail.order_no,
        "status": state.status,
        "orderSource": detail.order_source,
        "sellerOrderNumber": detail.seller_order_number,
        "purchaseAmount": money(detail.amount_cents, detail.money_style),
        "purchaseCurrency": "CNY",
        "domesticPostFee": money(detail.post_fee_cents, detail.money_style),
        "receiver": detail.receiver,
        "warehouseName": wh[0],
        "warehouseAddress": None if detail.warehouse_address_null else wh[1],
        "closeReason": reason,
        "createTime": cst_text(detail.create_ms // 1000),
        "payTime": cst_text(state.pay_s) if state.pay_s is not None else None,
        "updateTime": cst_text(state.update_s),
        "subOrderVOS": subs,
    }


# ---------------------------------------------------------------------------------------------
# the world


@dataclass
class _Clock:
    ms: int
    lock: threading.RLock = field(default_factory=threading.RLock)


class World:
    """A deterministic world of Xportcn orders seen at a simulated clock.

    Args:
        config: the world's knobs; ``WorldConfig()`` if omitted.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self._clock = _Clock(to_ms(self.config.clock))
        self.catalog = _make_catalog(self.config.seed, self.config.catalog_size)
        self.taobao = TaobaoOrderStore(self.config, self.catalog)
        self.taobao.ensure(self._clock.ms)

    # -- the clock -------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while reading or moving the world; reentrant."""
        return self._clock.lock

    @property
    def clock(self) -> datetime:
        """The simulated "now" (tz-aware UTC)."""
        return from_ms(self._clock.ms)

    @property
    def clock_ms(self) -> int:
        return self._clock.ms

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (>= 0); returns the new clock."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self._clock.ms += int(round(seconds * 1000))
            self.taobao.ensure(self._clock.ms)
            return self.clock

    def set_clock(self, when: datetime) -> datetime:
        """Move the clock to ``when`` (tz-aware, not before the current clock)."""
        ms = to_ms(when)
        with self.lock:
            if ms < self._clock.ms:
                raise ValueError(
                    f"the clock only moves forward: {when.isoformat()} < {self.clock.isoformat()}"
                )
            self._clock.ms = ms
            self.taobao.ensure(ms)
            return self.clock

    # -- taobao orders ---------------------------------------------------------------------

    def taobao_query(
        self,
        *,
        status: int | None = None,
        create_start: datetime | None = None,
        create_end: datetime | None = None,
        update_start: datetime | None = None,
        update_end: datetime | None = None,
        order_no: str | None = None,
    ) -> tuple[int, list[int] | range]:
        """The clock (ms) and the indices of matching orders, newest first.

        Time filters are inclusive at the start and exclusive at the end, compared at the
        API's one-second resolution.
        """

        def sec(dt: datetime | None) -> int | None:
            return None if dt is None else -(-to_ms(dt) // 1000)

        with self.lock:
            clock_ms = self._clock.ms
            return clock_ms, self.taobao.select(
                clock_ms,
                status=status,
                create_start_s=sec(create_start),
                create_end_s=sec(create_end),
                update_start_s=sec(update_start),
                update_end_s=sec(update_end),
                order_no=order_no,
            )

    def render_taobao(self, index: int, clock_ms: int) -> dict:
        """Wire ``TaoBaoOrderVO`` of the order with global index ``index`` at ``clock_ms``."""
        return render_taobao_order(
            self.taobao.detail(index), self.taobao.state(index, clock_ms), clock_ms
        )

    def taobao_page(self, page_no: int, page_size: int, **filters) -> tuple[int, list[dict]]:
        """Total matching orders and the wire records of one page (1-based), newest first."""
        clock_ms, indices = self.taobao_query(**filters)
        start = (page_no - 1) * page_size
        page = indices[start : start + page_size]
        return len(indices), [self.render_taobao(i, clock_ms) for i in page]

    def taobao_orders(self, **filters) -> list[dict]:
        """Every matching ``TaoBaoOrderVO`` at the current clock, newest first."""
        clock_ms, indices = self.taobao_query(**filters)
        return [self.render_taobao(i, clock_ms) for i in indices]

    def taobao_order(self, order_id: str | int) -> dict | None:
        """One ``TaoBaoOrderVO`` by xportcn id, or None if it does not exist (yet)."""
        with self.lock:
            clock_ms = self._clock.ms
            i = self.taobao.find_order_id(str(order_id), clock_ms)
            return None if i is None else self.render_taobao(i, clock_ms)

    def iter_taobao_plans(self) -> Iterator[tuple[TaobaoOrderDetail, TaobaoOrderState]]:
        """Static details and current state of every visible order, oldest first."""
        with self.lock:
            clock_ms = self._clock.ms
            n = self.taobao.count_visible(clock_ms)
        for i in range(n):
            yield self.taobao.detail(i), self.taobao.state(i, clock_ms)
