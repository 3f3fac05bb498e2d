"""What the Taobao world (:mod:`xport_sandbox.world`) and the 1688 world
(:mod:`xport_sandbox.alibaba`) share: the configuration, time and money helpers, the catalogue,
warehouses and carriers.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

CST = timezone(timedelta(hours=8), "CST")
CST_OFFSET_S = 8 * 3600
CST_FORMAT = "%Y-%m-%d %H:%M:%S"
_CST_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DAY_MS = 86_400_000
MIX_NAMES = ("varied", "odd2", "odd5")  # WorldConfig.mix: the keys of xport_sandbox.world.MIXES

# mybatis-plus / twitter snowflake epoch: ids from it look like the documented 19-digit ids
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657

# taobao order status codes (docs/api-contract.md#51-taobao-orders)
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
        orders_1688: 1688 orders created in ``[start, clock)``; None means ``orders // 3``.
        refund_rate: share of paid Taobao orders that get a refund on one line (about 4% of
            lines).
        refund_rate_1688: share of paid 1688 orders that get a refund on one item.
        nested_share_1688: share of 1688 order records served in 1688's own nested shape
            (``baseInfo``, ``productItems``, ``nativeLogistics``) instead of the flat one; 0 serves
            the flat shape only. Drawn per order, so an order keeps its shape.
        compact_time_share_1688: share of 1688 order times (each field of each order, drawn
            independently of the shape) written ``yyyyMMddHHmmssSSS+0800`` instead of
            ``yyyy-MM-dd HH:mm:ss``; 0 writes the latter only.
        variety: the Taobao order list pages carry the variety
        docs/api-contract.md#3-data-conventions allows, at the rates
            of :data:`VARIETY` (each amount as a number or a numeric string with 0-2 decimals,
            ids and digit-only text as JSON numbers, codes as strings, a ``receiver`` that is an
            object, null, empty or, rarely, undecodable, and now and then a corrupt copy of a
            record served right after it). Every form types to the same value, and a corrupt
            copy is rejected while its good twin loads, so the ground truth does not change.
            False serves the plain pages (only the ``awkward`` forms): the benchmarks' second
            column. Drawn per order and page request from the seed: deterministic.
        null_id_copies: share of the Taobao order list's records followed by a corrupt copy whose
            ``id`` is null (the contract allows corrupt records; a null id is the one paging
            cannot tell apart, docs/api-contract.md#41-moving-data). Like the variety's corrupt
            copies the copy is served beyond ``total`` and rejected while its twin loads, so the
            ground truth does not change. 0 (the default) serves none and draws nothing: every
            other world is unchanged. Drawn per order and page request from the seed.
        mix: the rates of that variety, by name (:data:`xport_sandbox.world.MIXES`): ``varied``
            (the default: ~0.4% of the records served carry a warning or a reject or are the
            good twin of a corrupt copy), ``odd2`` (~2%) and ``odd5`` (~5%), whose corrupt copies
            include null ids. The benchmarks run on each (``--mix``); only with ``variety``.
    """

    seed: int = 7
    orders: int = 2000
    start: datetime = datetime(2026, 1, 1, tzinfo=CST)
    clock: datetime = datetime(2026, 7, 1, tzinfo=CST)
    awkward: float = 0.1
    catalog_size: int = 3000
    detail_cache: int = 65_536
    orders_1688: int | None = None
    refund_rate: float = 0.09
    refund_rate_1688: float = 0.07
    nested_share_1688: float = 0.5
    compact_time_share_1688: float = 0.5
    variety: bool = True
    null_id_copies: float = 0.0
    mix: str = "varied"

    @property
    def n_orders_1688(self) -> int:
        """1688 orders created in ``[start, clock)`` (``orders_1688``, default ``orders // 3``)."""
        return self.orders // 3 if self.orders_1688 is None else self.orders_1688

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.clock.tzinfo is None:
            raise ValueError("WorldConfig.start and .clock must be timezone-aware")
        if self.clock <= self.start:
            raise ValueError("WorldConfig.clock must be after .start")
        if self.orders < 0:
            raise ValueError("WorldConfig.orders must be >= 0")
        if not 0.0 <= self.awkward <= 1.0:
            raise ValueError("WorldConfig.awkward must be within [0, 1]")
        if self.orders_1688 is not None and self.orders_1688 < 0:
            raise ValueError("WorldConfig.orders_1688 must be >= 0")
        if self.mix not in MIX_NAMES:
            raise ValueError(f"WorldConfig.mix must be one of {', '.join(MIX_NAMES)}, not {self.mix!r}")
        for name in (
            "refund_rate",
            "refund_rate_1688",
            "nested_share_1688",
            "compact_time_share_1688",
            "null_id_copies",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be within [0, 1]")


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


def _draw_create_times(rng: random.Random, lo: int, hi: int, count: int) -> list[int]:
    """``count`` distinct creation times (epoch ms) in ``[lo, hi)``, weighted by hour, sorted."""
    chosen: set[int] = set()
    while len(chosen) < count:
        ms = rng.randrange(lo, hi)
        hour = ((ms // 1000 + CST_OFFSET_S) // 3600) % 24
        if rng.random() * _HOUR_MAX < _HOUR_WEIGHTS[hour]:
            chosen.add(ms)
    return sorted(chosen)


def _money_style(rng: random.Random, aw: float) -> int:
    # mostly numbers with two decimals; the awkward share spread over the other forms
    r = rng.random()
    if r >= aw * 3:
        return 1
    return (0, 2, 3)[int(r / aw) if aw else 0]
