"""The 1688 side of the sandbox world: orders, refunds, logistics (docs/api-contract.md §5.7–§5.9).

Built like the Taobao store in ``world.py``: compact plans (flat ``array`` columns) generated one
day-sized chunk at a time, static details regenerated on demand from per-entity random streams,
and ``render_*`` functions that are the one place producing the wire format.

1688 differences worth knowing: statuses are strings; every order ships to a xportcn warehouse
in 1-2 parcels whose steps carry no status, so a parcel counts as delivered once the order is
``confirm_goods``/``success`` (the plan makes every step happen before that); refund amounts are
integer fen; the refund of an item shows on the item (``refundStatus``, ``refundId``) and moves the
order's ``modifyTime``.

Order records come in both shapes of docs/api-contract.md#57-1688-orders: flat, or 1688's own nested
shape (``baseInfo`` holding the order's fields, ``productItems`` beside it, ``nativeLogistics`` the
receiving warehouse, ``discount`` as negative integer fen), chosen per order; and each order time in
either ``yyyy-MM-dd HH:mm:ss`` or ``yyyyMMddHHmmssSSS+0800``, chosen per order and field. Both are
drawn after every other fact of the order, so the facts (and the ground truth) do not depend on
them, and the list filters select on the plans, never on the rendered record.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from array import array
from dataclasses import dataclass
from functools import lru_cache

from xport_sandbox.common import (
    _CARRIER_WEIGHTS,
    _CARRIERS,
    _WAREHOUSES,
    CST_OFFSET_S,
    DAY_MS,
    SNOWFLAKE_EPOCH_MS,
    Product,
    WorldConfig,
    _draw_create_times,
    _money_style,
    _scramble,
    cst_text,
    money,
    to_ms,
)
from xport_sandbox.logistics import (
    END_SIGN,
    END_STUCK,
    ORIGINS,
    Parcel,
    fit_times,
    make_parcel,
    plan_traces,
)

# order statuses, coded by their index
STATUSES = (
    "waitbuyerpay",
    "waitsellersend",
    "waitbuyerreceive",
    "confirm_goods",
    "success",
    "cancel",
    "terminated",
)
WAITBUYERPAY, WAITSELLERSEND, WAITBUYERRECEIVE, CONFIRM_GOODS, SUCCESS, CANCEL, TERMINATED = range(7)
STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
# refund statuses, coded by their index
REFUND_STATUSES = (
    "waitselleragree",
    "waitbuyermodify",
    "waitbuyersend",
    "waitsellerreceive",
    "refundsuccess",
    "refundclose",
)
# the order times of a record, in the order of its fields; bit k of ``compact_times`` is field k
ORDER_TIMES = ("createTime", "payTime", "allDeliveredTime", "completeTime", "modifyTime")
# 19-digit order ids: base + milliseconds since the snowflake epoch * 10**6 + index digits
ORDER_ID_BASE = 2 * 10**18
R_AGREE, R_MODIFY, R_SEND, R_RECEIVE, R_SUCCESS, R_CLOSE = range(6)

_CITY_PINYIN = [
    "yiwu",
    "hangzhou",
    "guangzhou",
    "shenzhen",
    "jinjiang",
    "changshu",
    "shanghai",
    "shantou",
    "wenzhou",
    "baigou",
    "humen",
    "cixi",
]  # same order as ORIGINS
_FIRMS = [("鑫达", "xinda"), ("恒源", "hengyuan"), ("佳美", "jiamei"), ("宏图", "hongtu"),
          ("金盛", "jinsheng"), ("嘉禾", "jiahe"), ("优品", "youpin"), ("百汇", "baihui"),
          ("瑞丰", "ruifeng"), ("创新", "chuangxin"), ("永利", "yongli"), ("华美", "huamei")]  # fmt: skip
_TRADES = [
    "日用品",
    "服饰",
    "电子科技",
    "玩具",
    "箱包",
    "工艺品",
    "贸易",
    "化妆品",
    "鞋业",
    "家居用品",
]
_UNITS = ["件", "个", "套", "双", "包", "条", "盒"]
_QUANTITIES = [2, 3, 5, 6, 10, 12, 20, 24, 30, 50, 100, 200]
_REASONS_UNSHIPPED = [
    (1, "我不想要了"),
    (2, "拍错/多拍/不喜欢"),
    (3, "未按约定时间发货"),
    (4, "卖家缺货"),
]
_REASONS_SHIPPED = [(11, "商品质量问题"), (12, "少件/漏发"), (13, "收到商品与描述不符"),
                    (14, "商品破损"), (15, "尺码/规格不符"), (16, "物流一直未送达")]  # fmt: skip


def _lifecycle(rng: random.Random, create_s: int) -> tuple[list[tuple[int, int]], int]:
    """Status transitions ``(epoch s, status)`` of one 1688 order, and when its parcels are all
    delivered (0: never shipped, -1: shipped but stuck in transit for good)."""
    t = create_s
    out = [(t, WAITBUYERPAY)]

    def step(lo: int, hi: int, status: int) -> None:
        nonlocal t
        t += max(1, rng.randint(lo, hi))
        out.append((t, status))

    u = rng.random()
    if u < 0.02:  # never paid, never closed
        return out, 0
    if u < 0.10:
        step(3600, 3 * 86_400, CANCEL)
        return out, 0
    t += max(60, min(2 * 86_400, int(rng.expovariate(1 / 7200))))
    out.append((t, WAITSELLERSEND))
    v = rng.random()
    if v < 0.02:  # the seller cannot ship: trade terminated
        step(86_400, 5 * 86_400, TERMINATED)
        return out, 0
    if v < 0.05:  # stuck awaiting shipment
        return out, 0
    step(4 * 3600, int(86_400 * min(6.0, max(0.3, rng.lognormvariate(0.3, 0.6)))) + 4 * 3600,
         WAITBUYERRECEIVE)  # fmt: skip
    ship = t
    if rng.random() < 0.04:  # lost in transit: the buyer never confirms
        return out, -1
    deliver = ship + rng.randint(86_400, 4 * 86_400)
    t = deliver
    step(3600, 7 * 86_400, CONFIRM_GOODS)
    step(60, 2 * 86_400, SUCCESS)
    return out, deliver


def _refund_plan(
    rng: random.Random, transitions: list[tuple[int, int]], rate: float
) -> tuple[int, int, list[tuple[int, int]]] | None:
    """``(kind, item pick, [(epoch s, refund status)])`` of a refund on a paid order, or None.

    ``kind`` 1 is refund only, 2 return and refund.
    """
    if rng.random() >= rate:
        return None
    pay = ship = after_pay = None
    for k, (t, status) in enumerate(transitions):
        if status == WAITSELLERSEND:
            pay = t
            after_pay = transitions[k + 1][0] if k + 1 < len(transitions) else None
        elif status == WAITBUYERRECEIVE:
            ship = t
    if pay is None:
        return None
    pick = rng.randrange(2**31)
    if ship is not None:
        kind = 2 if rng.random() < 0.6 else 1
        create = ship + rng.randint(86_400, 10 * 86_400)
    else:
        hi = min(pay + 5 * 86_400, (after_pay or 2**62) - 600)
        if hi <= pay + 600:
            return None
        kind, create = 1, rng.randint(pay + 600, hi)
    t = create
    steps = [(t, R_AGREE)]

    def step(lo: int, hi: int, status: int) -> None:
        nonlocal t
        t += rng.randint(lo, hi)
        steps.append((t, status))

    u = rng.random()
    if u < 0.08:  # the buyer withdraws
        step(3600, 2 * 86_400, R_CLOSE)
        return kind, pick, steps
    if u < 0.18:  # the seller refuses: the buyer must modify the request
        step(6 * 3600, 3 * 86_400, R_MODIFY)
        if rng.random() < 0.5:
            step(86_400, 7 * 86_400, R_CLOSE)
            return kind, pick, steps
        step(3600, 2 * 86_400, R_AGREE)
    if kind == 2:
        step(3600, 2 * 86_400, R_SEND)
        if rng.random() < 0.05:  # goods never sent back
            step(7 * 86_400, 8 * 86_400, R_CLOSE)
            return kind, pick, steps
        step(2 * 3600, 3 * 86_400, R_RECEIVE)
        step(2 * 86_400, 6 * 86_400, R_SUCCESS)
    else:
        step(3600, 2 * 86_400, R_SUCCESS)
    return kind, pick, steps


def refund_num_id(r: int) -> int:
    """Numeric id of 1688 refund number ``r`` (16 digits, below 2**53)."""
    return 5 * 10**15 + _scramble(r, 4_093_082_899, 10**15)


def bill_no(carrier: int, i: int, p: int) -> str:
    """Tracking number of parcel ``p`` of 1688 order ``i`` (a ``6`` marks 1688 parcels)."""
    return _CARRIERS[carrier][1] + "6" + f"{_scramble(i * 4 + p, 3_367_900_313, 10**12):012d}"


def logistics_id(i: int, p: int) -> str:
    return "LP00" + f"{_scramble(i * 4 + p, 2_654_435_761, 10**12):012d}"


def _draw_carrier(rng: random.Random) -> int:
    return rng.choices(range(len(_CARRIERS)), _CARRIER_WEIGHTS)[0]


@dataclass(frozen=True, slots=True)
class Seller:
    login_id: str
    company: str
    origin: int  # index into logistics.ORIGINS


def _make_sellers(seed: int, count: int = 400) -> list[Seller]:
    rng = random.Random(f"{seed}/1688/sellers")
    sellers = []
    for _ in range(count):
        origin = rng.randrange(len(ORIGINS))
        firm, firm_py = rng.choice(_FIRMS)
        place = ORIGINS[origin][2] if ORIGINS[origin][2].endswith("市") else ORIGINS[origin][1]
        company = f"{place}{firm}{rng.choice(_TRADES)}有限公司"
        if rng.random() < 0.7:
            login = f"{_CITY_PINYIN[origin]}{firm_py}{rng.randrange(10, 9999)}"
        else:
            login = f"{firm}{rng.choice(_TRADES)}厂{rng.randrange(1, 99)}"
        sellers.append(Seller(login, company, origin))
    return sellers


@dataclass(frozen=True, slots=True)
class AlibabaItem:
    """Static facts of one 1688 product item."""

    sub_item_id: int
    product_id: str
    sku_id: str | None
    spec_id: str | None
    name: str
    quantity: int
    price_cents: int
    unit: str
    id_as_number: bool

    @property
    def amount_cents(self) -> int:
        return self.price_cents * self.quantity


@dataclass(frozen=True, slots=True)
class AlibabaOrderDetail:
    """Static facts of one 1688 order."""

    index: int
    order_id: int
    create_ms: int
    seller: Seller
    company_null: bool
    warehouse: int
    items: tuple[AlibabaItem, ...]
    shipping_cents: int
    discount_cents: int  # already taken off the item prices
    id_as_number: bool
    money_style: int
    nested: bool = False  # served in 1688's own shape (baseInfo, productItems, nativeLogistics)
    compact_times: int = 0  # bit k: ORDER_TIMES[k] written yyyyMMddHHmmssSSS+0800

    @property
    def goods_cents(self) -> int:
        return sum(item.amount_cents for item in self.items)


@dataclass(frozen=True, slots=True)
class AlibabaOrderState:
    """What a plan says about a 1688 order at one instant."""

    status: int
    modify_s: int  # latest change: a status change or a change of its refund
    pay_s: int | None
    ship_s: int | None  # allDeliveredTime
    complete_s: int | None
    refund: int | None  # refund number, once created
    refund_item: int | None
    refund_status: int | None


@dataclass(frozen=True, slots=True)
class AlibabaRefundDetail:
    """Static facts of one 1688 refund."""

    index: int
    num_id: int
    refund_id: str
    order_index: int
    item_index: int
    kind: int
    apply_payment_fen: int
    apply_carriage_fen: int
    reason_id: int
    reason: str


class AlibabaOrderStore:
    """Plans of every 1688 order, as flat columns sorted by creation time (see TaobaoOrderStore)."""

    def __init__(self, config: WorldConfig, catalog: list[Product]) -> None:
        self.config = config
        self._catalog = catalog
        self._sellers = _make_sellers(config.seed)
        self._start_ms = to_ms(config.start)
        self._first_end_ms = to_ms(config.clock)
        self._day_mean = config.n_orders_1688 * DAY_MS / (self._first_end_ms - self._start_ms)
        self.create_ms = array("q")
        self.trans_off = array("q", [0])
        self.trans_t = array("q")
        self.trans_s = array("b")
        self.deliver_s = array("q")
        self.rf_order = array("q")
        self.rf_kind = array("b")
        self.rf_pick = array("q")
        self.rf_off = array("q", [0])
        self.rf_t = array("q")
        self.rf_s = array("b")
        self.refund_of_order: dict[int, int] = {}
        self.refund_by_id: dict[str, int] = {}
        self.generated_until_ms = self._start_ms
        self._chunks = 0
        self._state_cache: tuple[int, array, array] | None = None
        self._select_cache: dict[tuple, list[int]] = {}
        self.detail = lru_cache(maxsize=config.detail_cache)(self._make_detail)
        self.refund_detail = lru_cache(maxsize=config.detail_cache)(self._make_refund_detail)
        self.parcels = lru_cache(maxsize=config.detail_cache)(self._make_parcels)

    # -- generation ------------------------------------------------------------------------

    def ensure(self, clock_ms: int) -> None:
        while self.generated_until_ms <= clock_ms:
            self._generate_chunk()

    def _generate_chunk(self) -> None:
        k = self._chunks
        rng = random.Random(f"{self.config.seed}/1688/chunk/{k}")
        refund_rng = random.Random(f"{self.config.seed}/1688/refunds/{k}")
        if k == 0:
            lo, hi, count = self._start_ms, self._first_end_ms, self.config.n_orders_1688
        else:
            lo = self._first_end_ms + (k - 1) * DAY_MS
            hi = lo + DAY_MS
            x = self._day_mean * rng.uniform(0.8, 1.2)
            count = int(x) + (1 if rng.random() < x - int(x) else 0)
        for ms in _draw_create_times(rng, lo, hi, count):
            i = len(self.create_ms)
            self.create_ms.append(ms)
            transitions, deliver = _lifecycle(rng, ms // 1000)
            for t, s in transitions:
                self.trans_t.append(t)
                self.trans_s.append(s)
            self.trans_off.append(len(self.trans_t))
            self.deliver_s.append(deliver)
            plan = _refund_plan(refund_rng, transitions, self.config.refund_rate_1688)
            if plan is not None:
                kind, pick, steps = plan
                r = len(self.rf_order)
                self.rf_order.append(i)
                self.rf_kind.append(kind)
                self.rf_pick.append(pick)
                for t, s in steps:
                    self.rf_t.append(t)
                    self.rf_s.append(s)
                self.rf_off.append(len(self.rf_t))
                self.refund_of_order[i] = r
                self.refund_by_id[f"TQ{refund_num_id(r)}"] = r
        self.generated_until_ms = hi
        self._chunks += 1

    def _make_detail(self, i: int) -> AlibabaOrderDetail:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}/1688/order/{i}")
        aw = cfg.awkward
        create_ms = self.create_ms[i]
        order_id = ORDER_ID_BASE + (create_ms - SNOWFLAKE_EPOCH_MS) * 10**6 + (i % 10**4) * 100
        n_items = 1
        while n_items < 12 and rng.random() < 0.35:
            n_items += 1
        discount = 0 if rng.random() < 0.8 else rng.choice((100, 200, 500, 1000))
        items = []
        for k in range(n_items):
            p = rng.randrange(len(self._catalog))
            product = self._catalog[p]
            price = max(50, int(product.price_cents * rng.uniform(0.3, 0.6)))
            has_sku = rng.random() >= aw
            sku = str(5_000_000_000_000 + _scramble(p * 8 + k % 8, 5_915_587_277, 10**12))
            items.append(
                AlibabaItem(
                    sub_item_id=order_id + k + 1,
                    product_id=str(600_000_000_000 + _scramble(p, 7_919_337_731, 10**11)),
                    sku_id=sku if has_sku else None,
                    spec_id=hashlib.md5(sku.encode()).hexdigest() if has_sku else None,
                    name="厂家批发 " + product.title,
                    quantity=rng.choice(_QUANTITIES),
                    price_cents=price,
                    unit=rng.choice(_UNITS),
                    id_as_number=rng.random() < aw,
                )
            )
        return AlibabaOrderDetail(
            index=i,
            order_id=order_id,
            create_ms=create_ms,
            seller=self._sellers[rng.randrange(len(self._sellers))],
            company_null=rng.random() < aw / 2,
            warehouse=rng.choices(range(len(_WAREHOUSES)), [w[-1] for w in _WAREHOUSES])[0],
            items=tuple(items),
            shipping_cents=0 if rng.random() < 0.4 else rng.choice((500, 800, 1000, 1500, 2000, 3000)),
            discount_cents=discount,
            id_as_number=rng.random() < aw,
            money_style=_money_style(rng, aw),
            # the wire's shape and time formats: drawn last, so no other fact depends on them
            nested=rng.random() < cfg.nested_share_1688,
            compact_times=sum(1 << k for k in range(len(ORDER_TIMES)) if rng.random() < cfg.compact_time_share_1688),
        )

    def _make_refund_detail(self, r: int) -> AlibabaRefundDetail:
        rng = random.Random(f"{self.config.seed}/1688/refund/{r}")
        i = self.rf_order[r]
        detail = self.detail(i)
        n = self.refund_item(r)
        item = detail.items[n]
        kind = self.rf_kind[r]
        shipped = self.ship_s(i) is not None and self.ship_s(i) < self.rf_t[self.rf_off[r]]
        reason_id, reason = rng.choice(_REASONS_SHIPPED if shipped else _REASONS_UNSHIPPED)
        if kind == 2 and item.quantity > 1 and rng.random() < 0.4:
            payment = item.amount_cents * rng.randint(1, item.quantity - 1) // item.quantity
        elif kind == 1 and shipped and rng.random() < 0.5:
            payment = max(1, round(item.amount_cents * rng.uniform(0.1, 0.5)))
        else:
            payment = item.amount_cents
        carriage = detail.shipping_cents if (kind == 2 and rng.random() < 0.3) else 0
        num = refund_num_id(r)
        return AlibabaRefundDetail(
            index=r,
            num_id=num,
            refund_id=f"TQ{num}",
            order_index=i,
            item_index=n,
            kind=kind,
            apply_payment_fen=max(1, payment),
            apply_carriage_fen=carriage,
            reason_id=reason_id,
            reason=reason,
        )

    def _make_parcels(self, i: int) -> tuple[Parcel, ...]:
        """Plans of the parcels of order ``i`` (empty if it never ships)."""
        ship = self.ship_s(i)
        if ship is None:
            return ()
        detail = self.detail(i)
        deliver = self.deliver_s[i]
        rng = random.Random(f"{self.config.seed}/1688/parcels/{i}")
        count = 2 if len(detail.items) >= 2 and rng.random() < 0.2 else 1
        origin = ORIGINS[detail.seller.origin]
        dest = _WAREHOUSES[detail.warehouse][2:5]
        parcels = []
        for p in range(count):
            c = _draw_carrier(rng)
            carrier = _CARRIERS[c][0]
            start = ship + (rng.randint(600, 3 * 3600) if p == 0 else rng.randint(3 * 3600, 12 * 3600))
            if deliver > 0:
                traces = plan_traces(rng, start, carrier, origin, dest, END_SIGN)
                end = deliver if p == 0 else deliver - rng.randint(0, (deliver - start) // 3)
                traces = fit_times(traces, start, end)
            else:
                traces = plan_traces(rng, start, carrier, origin, dest, END_STUCK)
            parcels.append(make_parcel(bill_no(c, i, p), carrier, 0, traces))
        return tuple(parcels)

    # -- state at a clock ------------------------------------------------------------------

    def count_visible(self, clock_ms: int) -> int:
        return bisect.bisect_right(self.create_ms, clock_ms)

    def ship_s(self, i: int) -> int | None:
        for k in range(self.trans_off[i], self.trans_off[i + 1]):
            if self.trans_s[k] == WAITBUYERRECEIVE:
                return self.trans_t[k]
        return None

    def refund_item(self, r: int) -> int:
        return self.rf_pick[r] % len(self.detail(self.rf_order[r]).items)

    def refund_state(self, r: int, clock_s: int) -> tuple[int, int] | None:
        """Status and update time (epoch s) of refund ``r`` at the clock; None before it exists."""
        lo, hi = self.rf_off[r], self.rf_off[r + 1]
        j = bisect.bisect_right(self.rf_t, clock_s, lo, hi) - 1
        return None if j < lo else (self.rf_s[j], self.rf_t[j])

    def refund_history(self, r: int, clock_s: int) -> list[tuple[int, int]]:
        lo, hi = self.rf_off[r], self.rf_off[r + 1]
        j = bisect.bisect_right(self.rf_t, clock_s, lo, hi)
        return [(self.rf_t[k], self.rf_s[k]) for k in range(lo, j)]

    def state(self, i: int, clock_ms: int) -> AlibabaOrderState:
        lo, hi = self.trans_off[i], self.trans_off[i + 1]
        now_s = clock_ms // 1000
        j = bisect.bisect_right(self.trans_t, now_s, lo, hi) - 1
        when = {self.trans_s[k]: self.trans_t[k] for k in range(lo, j + 1)}
        modify = self.trans_t[j]
        refund = refund_item = refund_status = None
        r = self.refund_of_order.get(i)
        if r is not None:
            found = self.refund_state(r, now_s)
            if found is not None:
                refund, refund_item, refund_status = r, self.refund_item(r), found[0]
                modify = max(modify, found[1])
        return AlibabaOrderState(
            status=self.trans_s[j],
            modify_s=modify,
            pay_s=when.get(WAITSELLERSEND),
            ship_s=when.get(WAITBUYERRECEIVE),
            complete_s=when.get(SUCCESS),
            refund=refund,
            refund_item=refund_item,
            refund_status=refund_status,
        )

    def states(self, clock_ms: int) -> tuple[array, array]:
        """Status and modify time (epoch s) of every visible order; cached per clock."""
        cached = self._state_cache
        if cached is not None and cached[0] == clock_ms:
            return cached[1], cached[2]
        n = self.count_visible(clock_ms)
        now_s = clock_ms // 1000
        off, tt, ts = self.trans_off, self.trans_t, self.trans_s
        status, modify = array("b", bytes(n)), array("q", bytes(8 * n))
        for i in range(n):
            lo, hi = off[i], off[i + 1]
            j = hi - 1
            if tt[j] > now_s:
                j = bisect.bisect_right(tt, now_s, lo, hi) - 1
            status[i] = ts[j]
            modify[i] = tt[j]
        for i, r in self.refund_of_order.items():
            if i < n:
                found = self.refund_state(r, now_s)
                if found is not None:
                    modify[i] = max(modify[i], found[1])
        self._state_cache = (clock_ms, status, modify)
        return status, modify

    def select(
        self,
        clock_ms: int,
        *,
        status: int | None = None,
        create_start_s: int | None = None,
        create_end_s: int | None = None,
        modify_start_s: int | None = None,
        modify_end_s: int | None = None,
    ) -> list[int] | range:
        """Indices of the visible orders matching the filters, newest first."""
        hi = self.count_visible(clock_ms)
        lo = 0
        if create_start_s is not None:
            lo = max(lo, bisect.bisect_left(self.create_ms, create_start_s * 1000, 0, hi))
        if create_end_s is not None:
            hi = min(hi, bisect.bisect_left(self.create_ms, create_end_s * 1000, 0, hi))
        if hi <= lo:
            return []
        if status is None and modify_start_s is None and modify_end_s is None:
            return range(hi - 1, lo - 1, -1)
        key = (clock_ms, lo, hi, status, modify_start_s, modify_end_s)
        selected = self._select_cache.get(key)
        if selected is None:
            statuses, modifies = self.states(clock_ms)
            m_lo = modify_start_s if modify_start_s is not None else -(2**62)
            m_hi = modify_end_s if modify_end_s is not None else 2**62
            selected = [
                i
                for i in range(hi - 1, lo - 1, -1)
                if (status is None or statuses[i] == status) and m_lo <= modifies[i] < m_hi
            ]
            if len(self._select_cache) >= 32:
                self._select_cache.pop(next(iter(self._select_cache)))
            self._select_cache[key] = selected
        return selected

    def find_order_id(self, order_id: str, clock_ms: int) -> int | None:
        if not order_id.isdigit() or len(order_id) > 19:
            return None
        ms = (int(order_id) - ORDER_ID_BASE) // 10**6 + SNOWFLAKE_EPOCH_MS
        i = bisect.bisect_left(self.create_ms, ms, 0, self.count_visible(clock_ms))
        found = i < len(self.create_ms) and self.create_ms[i] == ms
        return i if found and self.detail(i).order_id == int(order_id) else None

    def find_refund(self, refund_id: str, clock_ms: int) -> int | None:
        r = self.refund_by_id.get(refund_id)
        if r is None or self.rf_t[self.rf_off[r]] > clock_ms // 1000:
            return None
        return r


# ---------------------------------------------------------------------------------------------
# the wire


def _cst(epoch_s: int | None) -> str | None:
    return None if epoch_s is None else cst_text(epoch_s)


def compact_text(epoch_s: int) -> str:
    """``yyyyMMddHHmmssSSS+0800``, as 1688's own API writes times
    (docs/api-contract.md#57-1688-orders)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch_s + CST_OFFSET_S)) + "000+0800"


def _order_time(epoch_s: int | None, detail: AlibabaOrderDetail, field: int) -> str | None:
    if epoch_s is None:
        return None
    return compact_text(epoch_s) if detail.compact_times >> field & 1 else cst_text(epoch_s)


def _native_logistics(detail: AlibabaOrderDetail) -> dict:
    """1688's ``nativeLogistics`` of a nested record: the receiving warehouse's address."""
    name, address, province, city, area, zip_code, _weight = _WAREHOUSES[detail.warehouse]
    return {
        "contactPerson": name,
        "province": province,
        "city": city,
        "area": area,
        "address": address,
        "zip": zip_code,
    }


def logistics_status(status: int) -> int:
    """An item's ``logisticsStatus``: 1 not shipped, 2 shipped, 3 received."""
    if status == WAITBUYERRECEIVE:
        return 2
    if status in (CONFIRM_GOODS, SUCCESS):
        return 3
    return 1


def render_1688_order(detail: AlibabaOrderDetail, state: AlibabaOrderState) -> dict:
    """The 1688 order record of docs/api-contract.md#57-1688-orders at the state's instant, in the
    order's shape."""
    style = detail.money_style
    status = STATUSES[state.status]
    items = []
    for k, item in enumerate(detail.items):
        refunded = state.refund_item == k and state.refund_status is not None
        items.append(
            {
                "subItemId": item.sub_item_id if item.id_as_number else str(item.sub_item_id),
                "productId": item.product_id,
                "skuId": item.sku_id,
                "specId": item.spec_id,
                "name": item.name,
                "quantity": item.quantity,
                "price": money(item.price_cents, style),
                "itemAmount": money(item.amount_cents, style),
                "unit": item.unit,
                "status": status,
                "refundStatus": REFUND_STATUSES[state.refund_status] if refunded else None,
                "refundId": f"TQ{refund_num_id(state.refund)}" if refunded else None,
                "logisticsStatus": logistics_status(state.status),
            }
        )
    record = {
        "orderId": detail.order_id if detail.id_as_number else str(detail.order_id),
        "webSite": "1688",
        "status": status,
        "sellerLoginId": detail.seller.login_id,
        "sellerCompanyName": None if detail.company_null else detail.seller.company,
        "totalAmount": money(detail.goods_cents + detail.shipping_cents, style),
        "shippingFee": money(detail.shipping_cents, style),
        "discount": money(detail.discount_cents, style),
        "currency": "CNY",
        "createTime": _order_time(detail.create_ms // 1000, detail, 0),
        "payTime": _order_time(state.pay_s, detail, 1),
        "allDeliveredTime": _order_time(state.ship_s, detail, 2),
        "completeTime": _order_time(state.complete_s, detail, 3),
        "modifyTime": _order_time(state.modify_s, detail, 4),
    }
    if not detail.nested:
        record["productItems"] = items
        return record
    record["discount"] = -detail.discount_cents  # 1688 writes it as (negative) integer fen
    return {"baseInfo": record, "productItems": items, "nativeLogistics": _native_logistics(detail)}


def render_1688_refund(rd: AlibabaRefundDetail, detail: AlibabaOrderDetail, history: list[tuple[int, int]]) -> dict:
    """``data`` of the 1688 refund detail (docs/api-contract.md#58-1688-refunds)."""
    update_s, status = history[-1]
    item = detail.items[rd.item_index]
    sent = any(s in (R_RECEIVE,) for _, s in history)
    return {
        "id": rd.num_id,
        "refundId": rd.refund_id,
        "orderId": str(detail.order_id),
        "subItemId": str(item.sub_item_id),
        "status": REFUND_STATUSES[status],
        "applyPayment": rd.apply_payment_fen,
        "applyCarriage": rd.apply_carriage_fen,
        "refundPayment": rd.apply_payment_fen + rd.apply_carriage_fen,
        "applyReason": rd.reason,
        "applyReasonId": rd.reason_id,
        "buyerSendGoods": sent,
        "createTime": cst_text(history[0][0]),
        "updateTime": cst_text(update_s),
    }


def render_1688_logistics(detail: AlibabaOrderDetail, parcels: tuple[Parcel, ...], clock_ms: int) -> dict:
    """``data`` of the 1688 logistics trace (docs/api-contract.md#59-1688-logistics); parcels show
    from their first step."""
    clock_s = clock_ms // 1000
    trace = []
    for p, parcel in enumerate(parcels):
        steps = parcel.visible(clock_s)
        if not steps:
            continue
        trace.append(
            {
                "logisticsId": logistics_id(detail.index, p),
                "logisticsBillNo": parcel.tracking_number,
                "logisticsCompanyName": parcel.carrier,
                "logisticsSteps": [{"acceptTime": cst_text(s.time_s), "remark": s.standard_desc} for s in steps],
            }
        )
    return {"orderId": str(detail.order_id), "logisticsTrace": trace}
