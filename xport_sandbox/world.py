"""The sandbox's deterministic world of Xportcn orders, moving with a simulated clock.

The world is a set of *plans*: for every order, when it is created and when its status changes.
What the API shows at simulated time ``T`` is derived from the plans and ``T`` alone, so a world
advanced to ``T`` and a world read at ``T`` agree, whatever path the clock took.

Layout (Taobao refunds and parcels live here beside the Taobao orders; 1688 orders, refunds and
parcels in ``alibaba.py``; the parcels' tracking plans in ``logistics.py``):

- ``WorldConfig`` holds the knobs; ``World`` owns the clock, the lock and one store per entity.
- ``TaobaoOrderStore`` keeps the compact plans (flat ``array`` columns, no per-order objects),
  generates them chunk by chunk as the clock moves forward, and answers queries.
- ``TaobaoOrderDetail``/``TaobaoLineDetail`` are the static facts of one order, regenerated on
  demand from a per-order random stream (and cached), so a world of a million orders stays small.
- ``render_taobao_order`` is the one place that turns plans into the wire format
  (docs/api-contract.md#51-taobao-orders), including the contract's awkward cases (ids as numbers,
  money as strings or numbers, nulls).

Times: the clock and plans are UTC epoch milliseconds/seconds internally; the wire shows China
Standard Time strings (fixed UTC+8, no offset).
"""

from __future__ import annotations

import bisect
import json
import random
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from xport_sandbox.common import (
    _CARRIER_WEIGHTS,
    _CARRIERS,
    _GIVEN,
    _SOURCE_WEIGHTS,
    _SOURCES,
    _SURNAMES,
    _WAREHOUSES,
    AWAITING_FINANCE_PAY,
    AWAITING_PAYMENT,
    BUILDING,
    CANCELLED,
    CST,
    CST_OFFSET_S,
    DAY_MS,
    FINANCE_APPROVED,
    FINANCE_REJECTED,
    MIX_NAMES,
    OTHER,
    PAID_AWAITING_SHIPMENT,
    PROOF_UPLOADED,
    REFUND_NONE,
    SHIPPED,
    SNOWFLAKE_EPOCH_MS,
    Product,
    WorldConfig,
    _draw_create_times,
    _make_catalog,
    _money_style,
    _scramble,
    cst_text,
    from_ms,
    money,
    to_ms,
)
from xport_sandbox.logistics import (
    CARRIER_CONTACTS,
    CARRIER_LOGOS,
    ORIGINS,
    Parcel,
    draw_end,
    make_parcel,
    plan_traces,
)

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
    """What a plan says about an order at one instant.

    ``update_s`` is the latest change of the order record: a status change or a change of its
    refund. ``refund_line``/``refund_status`` are the refunded line's index and refund status
    (None/0 when the order has no refund yet).
    """

    status: int
    update_s: int
    pay_s: int | None
    previous_status: int | None  # the status before the current one (close reasons)
    refund_line: int | None = None
    refund_status: int = REFUND_NONE


def _lifecycle(rng: random.Random, create_s: int) -> list[tuple[int, int]]:
    """Status transitions ``(epoch_s, status)`` of one order, from creation on."""
    t = create_s
    out = [(t, BUILDING)]

    def step(lo: int, hi: int, status: int, mean: float | None = None) -> None:
        nonlocal t
        delay = rng.randint(lo, hi) if mean is None else min(hi, max(lo, int(rng.expovariate(1 / mean))))
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


# taobao refund status codes (docs/api-contract.md#51-taobao-orders)
REFUND_APPLIED, REFUND_AGREED, REFUND_WAITING_RETURN, REFUND_SUCCEEDED = 10, 20, 30, 100
REFUND_REFUSED, REFUND_CLOSED = -10, -20
REFUND_OPEN = (REFUND_APPLIED, REFUND_AGREED, REFUND_WAITING_RETURN, REFUND_REFUSED)
# (reasonId, reasonDesc, buyer's descriptions)
_TB_REASONS_UNSHIPPED = [
    (1, "不想要了", ["不需要了", "客户取消了订单", "买重复了"]),
    (2, "拍错/多拍", ["颜色拍错了", "数量拍多了"]),
    (3, "未按约定时间发货", ["三天了还没发货", "催了几次都不发"]),
    (4, "缺货", ["卖家说没货了"]),
]
_TB_REASONS_NOT_RECEIVED = [
    (5, "快递一直未送达", ["物流一直不更新", "快递停在中转站好几天了"]),
    (6, "快递无跟踪记录", ["单号查不到物流信息"]),
    (7, "空包裹/少货", ["仓库收到是空包裹"]),
]
_TB_REASONS_RECEIVED = [
    (8, "商品质量问题", ["开线了", "有污渍", "质量太差"]),
    (9, "尺码拍错/不喜欢/效果不好", ["尺码偏小", "颜色和图片不一样"]),
    (10, "与商品描述不符", ["材质不对", "不是描述的纯棉"]),
    (11, "少件/漏发", ["少发了一件", "缺配件"]),
    (12, "商品破损", ["外包装破损，商品摔坏了"]),
]
_TB_REFUSE_REASONS = [
    "商品已发出，请拒收后再申请",
    "买家退回的商品影响二次销售",
    "商品无质量问题，不同意退款",
    "未收到退货",
]
_SHOP_WORDS = ["鑫达", "恒源", "佳美", "宏图", "金盛", "嘉禾", "优品", "百汇", "瑞丰", "创新"]
_SUB_PURCHASE_INV = pow(1_597_334_677, -1, 10**11)


def taobao_refund_id(r: int) -> str:
    """The Taobao refund id of refund number ``r`` (18 digits, unique)."""
    return str(2 * 10**17 + _scramble(r, 4_093_082_899, 10**17))


def _taobao_refund_plan(
    rng: random.Random, transitions: list[tuple[int, int]], rate: float
) -> tuple[int, int, int, list[tuple[int, int]]] | None:
    """``(refundType, goodsStatus, line pick, [(epoch ms, refundStatus)])`` or None.

    Only paid orders get refunds: created after the order reached 10 (awaiting shipment) and
    before it was closed, or after it shipped.
    """
    if rng.random() >= rate:
        return None
    t10 = ship = after10 = None
    for k, (t, status) in enumerate(transitions):
        if status == PAID_AWAITING_SHIPMENT:
            t10 = t
            if k + 1 < len(transitions):
                after10 = transitions[k + 1][0]
        elif status == SHIPPED:
            ship = t
    if t10 is None:
        return None
    pick = rng.randrange(2**31)
    if ship is not None:
        u = rng.random()
        if u < 0.55:
            refund_type, goods, create_s = 2, 2, ship + rng.randint(2 * 86_400, 15 * 86_400)
        elif u < 0.8:
            refund_type, goods, create_s = 1, 2, ship + rng.randint(2 * 86_400, 15 * 86_400)
        else:
            refund_type, goods, create_s = 1, 1, ship + rng.randint(86_400, 6 * 86_400)
    else:
        hi = min(t10 + 5 * 86_400, (after10 or 2**62) - 600)
        if hi <= t10 + 600:
            return None
        refund_type, goods, create_s = 1, 1, rng.randint(t10 + 600, hi)
    t = create_s * 1000 + rng.randrange(1000)
    steps = [(t, REFUND_APPLIED)]

    def step(lo: int, hi: int, status: int) -> None:
        nonlocal t
        t += rng.randint(lo, hi) * 1000 + rng.randrange(1000)
        steps.append((t, status))

    u = rng.random()
    if u < 0.06:  # the buyer withdraws
        step(3600, 2 * 86_400, REFUND_CLOSED)
    elif u < 0.16:  # the seller refuses; most buyers then give up
        step(6 * 3600, 3 * 86_400, REFUND_REFUSED)
        if rng.random() < 0.6:
            step(86_400, 7 * 86_400, REFUND_CLOSED)
    else:
        step(600, 2 * 86_400, REFUND_AGREED)
        if refund_type == 2:
            v = rng.random()
            if v < 0.05:  # goods never sent back
                step(7 * 86_400, 8 * 86_400, REFUND_CLOSED)
            elif v >= 0.1:  # else the buyer is slow and it stays agreed
                step(2 * 3600, 3 * 86_400, REFUND_WAITING_RETURN)
                if rng.random() < 0.95:
                    step(2 * 86_400, 7 * 86_400, REFUND_SUCCEEDED)
        else:
            step(60, 86_400, REFUND_SUCCEEDED)
    return refund_type, goods, pick, steps


@dataclass(frozen=True, slots=True)
class TaobaoRefundDetail:
    """Static facts of one Taobao refund (its status comes from the plan)."""

    index: int
    refund_id: str
    order_index: int
    line_index: int
    refund_type: int  # 1 refund only, 2 return and refund
    goods_status: int  # 1 not received, 2 received
    create_ms: int
    fee_cents: int
    reason_id: int
    reason_desc: str
    refund_desc: str | None
    refuse_reason: str  # shown once refused
    pay_order_id: str
    supplier_id: int
    return_carrier: int
    return_address: str
    buyer_phone: str
    warehouse_address: str


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
        # refunds, one at most per order: refund r belongs to order rf_order[r], its status
        # changes are rf_t/rf_s[rf_off[r]:rf_off[r+1]] (epoch ms), the first one its creation
        self.rf_order = array("q")
        self.rf_type = array("b")
        self.rf_goods = array("b")
        self.rf_pick = array("q")
        self.rf_off = array("q", [0])
        self.rf_t = array("q")
        self.rf_s = array("b")
        self.refund_of_order: dict[int, int] = {}
        self.refund_by_id: dict[str, int] = {}
        self._rf_sorted: list[tuple[int, int, int]] = []  # (create ms, refund id, r), ascending
        self._rf_select_cache: dict[tuple, list[int]] = {}
        self.refund_detail = lru_cache(maxsize=config.detail_cache)(self._make_refund_detail)
        self.parcels = lru_cache(maxsize=config.detail_cache)(self._make_parcels)

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
        # refunds draw from their own stream, so the orders are the same with or without them
        refund_rng = random.Random(f"{self.config.seed}/taobao/refunds/{k}")
        for ms in _draw_create_times(rng, lo, hi, count):
            i = len(self.create_ms)
            self.create_ms.append(ms)
            transitions = _lifecycle(rng, ms // 1000)
            for t, s in transitions:
                self.trans_t.append(t)
                self.trans_s.append(s)
            self.trans_off.append(len(self.trans_t))
            plan = _taobao_refund_plan(refund_rng, transitions, self.config.refund_rate)
            if plan is not None:
                self._add_refund(i, *plan)
        self.generated_until_ms = hi
        self._chunks += 1

    def _add_refund(self, i: int, refund_type: int, goods_status: int, pick: int, steps: list[tuple[int, int]]) -> None:
        r = len(self.rf_order)
        self.rf_order.append(i)
        self.rf_type.append(refund_type)
        self.rf_goods.append(goods_status)
        self.rf_pick.append(pick)
        for t, s in steps:
            self.rf_t.append(t)
            self.rf_s.append(s)
        self.rf_off.append(len(self.rf_t))
        self.refund_of_order[i] = r
        refund_id = taobao_refund_id(r)
        self.refund_by_id[refund_id] = r
        bisect.insort(self._rf_sorted, (steps[0][0], int(refund_id), r))

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
            0 if rng.random() < 0.6 else rng.choice((300, 400, 500, 600, 800, 1000, 1200, 1500)) for _ in range(n_shops)
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
            tracking_digits = f"{_scramble(i * 128 + n, 3_367_900_313, 10**12):012d}"
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
        update_s = self.trans_t[j]
        refund_line, refund_status = None, REFUND_NONE
        r = self.refund_of_order.get(i)
        if r is not None and self.rf_t[self.rf_off[r]] <= clock_ms:
            refund_status, modified_ms = self.refund_state(r, clock_ms)
            update_s = max(update_s, modified_ms // 1000)
            refund_line = self.refund_line(r)
        return TaobaoOrderState(
            status=self.trans_s[j],
            update_s=update_s,
            pay_s=pay_s,
            previous_status=self.trans_s[j - 1] if j > lo else None,
            refund_line=refund_line,
            refund_status=refund_status,
        )

    def ship_s(self, i: int) -> int | None:
        """When order ``i`` is (or will be) shipped, per its plan; None if it never ships."""
        for k in range(self.trans_off[i], self.trans_off[i + 1]):
            if self.trans_s[k] == SHIPPED:
                return self.trans_t[k]
        return None

    # -- refunds ---------------------------------------------------------------------------

    def refund_state(self, r: int, clock_ms: int) -> tuple[int, int]:
        """Status and last-modified time (epoch ms) of refund ``r`` at the clock (created)."""
        lo, hi = self.rf_off[r], self.rf_off[r + 1]
        j = bisect.bisect_right(self.rf_t, clock_ms, lo, hi) - 1
        return self.rf_s[j], self.rf_t[j]

    def refund_history(self, r: int, clock_ms: int) -> list[tuple[int, int]]:
        """``(epoch ms, status)`` changes of refund ``r`` up to the clock, oldest first."""
        lo, hi = self.rf_off[r], self.rf_off[r + 1]
        j = bisect.bisect_right(self.rf_t, clock_ms, lo, hi)
        return [(self.rf_t[k], self.rf_s[k]) for k in range(lo, j)]

    def refund_line(self, r: int) -> int:
        """Index of the refunded line inside its order."""
        return self.rf_pick[r] % len(self.detail(self.rf_order[r]).lines)

    def refund_create_ms(self, r: int) -> int:
        return self.rf_t[self.rf_off[r]]

    def count_refunds_visible(self, clock_ms: int) -> int:
        return bisect.bisect_right(self._rf_sorted, (clock_ms, 2**63, 0))

    def find_refund(self, refund_id: str, clock_ms: int) -> int | None:
        """Index of the refund with this id, if it exists at the clock."""
        r = self.refund_by_id.get(refund_id)
        return r if r is not None and self.refund_create_ms(r) <= clock_ms else None

    def select_refunds(
        self,
        clock_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        refund_id: str | None = None,
        purchase_order_id: str | None = None,
        sales_order_id: str | None = None,
        refund_status: int | None = None,
    ) -> list[int]:
        """Indices of the refunds created at or before the clock matching the filters, newest
        first (createTime, then refund id). Cached: a pipeline pages through one filter."""
        key = (clock_ms, start_ms, end_ms, refund_id, purchase_order_id, sales_order_id,
               refund_status)  # fmt: skip
        selected = self._rf_select_cache.get(key)
        if selected is not None:
            return selected
        visible = self._rf_sorted[: self.count_refunds_visible(clock_ms)]
        lo = 0 if start_ms is None else bisect.bisect_left(visible, (start_ms, -1, -1))
        hi = len(visible) if end_ms is None else bisect.bisect_left(visible, (end_ms, -1, -1))
        selected = []
        for k in range(hi - 1, lo - 1, -1):
            r = visible[k][2]
            if refund_id is not None and taobao_refund_id(r) != refund_id:
                continue
            if refund_status is not None and self.refund_state(r, clock_ms)[0] != refund_status:
                continue
            if purchase_order_id is not None or sales_order_id is not None:
                detail = self.detail(self.rf_order[r])
                if sales_order_id is not None and str(detail.order_id) != sales_order_id:
                    continue
                line = detail.lines[self.refund_line(r)]
                if purchase_order_id is not None and line.purchase_id != purchase_order_id:
                    continue
            selected.append(r)
        if len(self._rf_select_cache) >= 32:
            self._rf_select_cache.pop(next(iter(self._rf_select_cache)))
        self._rf_select_cache[key] = selected
        return selected

    def _make_refund_detail(self, r: int) -> TaobaoRefundDetail:
        cfg = self.config
        rng = random.Random(f"{cfg.seed}/taobao/refund/{r}")
        i = self.rf_order[r]
        detail = self.detail(i)
        n = self.refund_line(r)
        line = detail.lines[n]
        refund_type, goods_status = self.rf_type[r], self.rf_goods[r]
        shipped = self.ship_s(i) is not None and self.ship_s(i) * 1000 < self.refund_create_ms(r)
        if not shipped:
            reasons = _TB_REASONS_UNSHIPPED
        elif goods_status == 1:
            reasons = _TB_REASONS_NOT_RECEIVED
        else:
            reasons = _TB_REASONS_RECEIVED
        reason_id, reason_desc, descs = reasons[rng.randrange(len(reasons))]
        if refund_type == 1 and goods_status == 2:  # kept the goods: a partial refund
            fee = max(1, round(line.amount_cents * rng.uniform(0.1, 0.6)))
        elif refund_type == 2 and line.quantity > 1 and rng.random() < 0.3:
            fee = line.amount_cents * rng.randint(1, line.quantity - 1) // line.quantity
        else:
            fee = line.amount_cents
        wh = _WAREHOUSES[detail.warehouse]
        return TaobaoRefundDetail(
            index=r,
            refund_id=taobao_refund_id(r),
            order_index=i,
            line_index=n,
            refund_type=refund_type,
            goods_status=goods_status,
            create_ms=self.refund_create_ms(r),
            fee_cents=max(1, min(fee, line.amount_cents)),
            reason_id=reason_id,
            reason_desc=reason_desc,
            refund_desc=rng.choice(descs) if rng.random() >= cfg.awkward else None,
            refuse_reason=rng.choice(_TB_REFUSE_REASONS),
            pay_order_id=f"2026{rng.randrange(10**23, 10**24)}",
            supplier_id=2_200_000_000 + _scramble(i * 8 + line.shop, 48_271, 10**9),
            return_carrier=rng.choices(range(len(_CARRIERS)), _CARRIER_WEIGHTS)[0],
            return_address=f"{rng.choice(ORIGINS)[1]}{rng.choice(_SHOP_WORDS)}商贸售后部",
            buyer_phone=json.loads(detail.receiver)["phone"],
            warehouse_address=wh[1],
        )

    # -- logistics -------------------------------------------------------------------------

    def find_sub_purchase(self, sub_purchase_id: str, clock_ms: int) -> tuple[int, int] | None:
        """``(order index, line index)`` of a visible line by its ``taobaoSubPurchaseId``."""
        if len(sub_purchase_id) != 12 or not sub_purchase_id.isdigit():
            return None
        x = ((int(sub_purchase_id) - 300_000_000_000 - 12_345_678_901) * _SUB_PURCHASE_INV) % (10**11)
        i, n = divmod(x, 64)
        if i >= self.count_visible(clock_ms):
            return None
        lines = self.detail(i).lines
        if n >= len(lines) or lines[n].sub_purchase_id != sub_purchase_id:
            return None
        return i, n

    def _make_parcels(self, i: int, n: int) -> tuple[Parcel, ...]:
        """Plans of the parcels of line ``n`` of order ``i`` (empty if it never ships)."""
        ship_s = self.ship_s(i)
        if ship_s is None:
            return ()
        detail = self.detail(i)
        line = detail.lines[n]
        rng = random.Random(f"{self.config.seed}/taobao/parcels/{i}/{n}")
        origin = ORIGINS[_scramble(i * 8 + line.shop, 2_654_435_761) % len(ORIGINS)]
        dest = _WAREHOUSES[detail.warehouse][2:5]
        two = line.quantity >= 2 and rng.random() < 0.12
        first_qty = rng.randint(1, line.quantity - 1) if two else line.quantity
        carrier = _CARRIERS[line.carrier][0]
        start = ship_s + rng.randint(300, 3 * 3600)
        traces = plan_traces(rng, start, carrier, origin, dest, draw_end(rng))
        parcels = [make_parcel(line.tracking_number, carrier, first_qty, traces)]
        if two:
            c2 = rng.choices(range(len(_CARRIERS)), _CARRIER_WEIGHTS)[0]
            number = _CARRIERS[c2][1] + "3" + f"{_scramble(i * 128 + 64 + n, 3_367_900_313, 10**12):012d}"
            start = ship_s + rng.randint(12 * 3600, 3 * 86_400)
            traces = plan_traces(rng, start, _CARRIERS[c2][0], origin, dest, draw_end(rng))
            parcels.append(make_parcel(number, _CARRIERS[c2][0], line.quantity - first_qty, traces))
        return tuple(parcels)

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
        # a refund's change is a change of its order's record
        for _, _, r in self._rf_sorted[: self.count_refunds_visible(clock_ms)]:
            i = self.rf_order[r]
            update[i] = max(update[i], self.refund_state(r, clock_ms)[1] // 1000)
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
    """Refund status of a line at the clock: its refund's current status, or 0 (none)."""
    if state.refund_line is not None and (line.sub_order_id & 0xFFF) - 1 == state.refund_line:
        return state.refund_status
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


# rates of the varied Taobao order list (``WorldConfig.variety``), per value unless said otherwise
VARIETY = {
    "money": (0.45, 0.15, 0.25, 0.15),  # money(): 12.50 / 12.5 (4) / "12.50" / "12.5" ("4")
    "order_id_number": 0.3,  # id, subOrderId as JSON numbers
    "other_id_number": 0.1,  # orderNo, itemId, skuId, taobao(Sub)PurchaseId as JSON numbers
    "digits_text_number": 0.3,  # a digit-only sellerOrderNumber as a JSON number
    "code_text": 0.1,  # status, refundStatus, quantity as strings
    "receiver_object": 0.05,  # receiver as a JSON object instead of a JSON string
    "receiver_null": 0.03,
    "receiver_empty": 0.01,
    "receiver_undecodable": 0.002,  # a warning: no column is defined from it
    "corrupt_copy": 0.001,  # per record: a copy that cannot be typed (a reject) follows it
    # what a corrupt copy gets wrong: an amount "12.5O" / a 30 February updateTime / a null id
    "corrupt_kind": (0.5, 0.5, 0.0),
}
# the worlds of the benchmarks (``WorldConfig.mix``): the same forms at other rates. A mix is named
# by the share of the records served that carry a warning or a reject (an undecodable receiver, a
# corrupt copy) or are the good twin of a corrupt copy (the same id twice in a page): the records
# the DuckDB normaliser sent to the Python reference before issue 24. Measured over 10,000
# records: varied 0.43%, odd2 2.0%, odd5 5.1%. "varied" is the default world and has no null id;
# the others have null ids among their corrupt copies.
MIXES: dict[str, dict] = {
    "varied": VARIETY,
    "odd2": {**VARIETY, "receiver_undecodable": 0.015, "corrupt_copy": 0.0025, "corrupt_kind": (0.4, 0.4, 0.2)},
    "odd5": {**VARIETY, "receiver_undecodable": 0.035, "corrupt_copy": 0.0075, "corrupt_kind": (0.4, 0.4, 0.2)},
}
assert tuple(MIXES) == MIX_NAMES
_MONEY_STYLES = (1, 2, 0, 3)
_VARIETY_TAG = 0x5EED
_NULL_ID_TAG = 0x0DD1D


def vary_taobao_order(rec: dict, rng: random.Random, rates: dict | None = None) -> list[dict]:
    """The varied wire forms of one rendered ``TaoBaoOrderVO`` (changed in place), followed by a
    corrupt copy now and then: the records a varied list page serves for it. ``rates``: an entry
    of :data:`MIXES` (default :data:`VARIETY`)."""
    v = VARIETY if rates is None else rates

    def amount(value):
        cents = int(round(Decimal(value) * 100))
        style = _MONEY_STYLES[_pick(rng.random(), v["money"])]
        return money(cents, style)

    def maybe_number(value, share):
        if isinstance(value, str) and value.isdigit() and len(value) <= 18 and rng.random() < share:
            return int(value)
        return value

    def maybe_text(value):
        return str(value) if isinstance(value, int) and rng.random() < v["code_text"] else value

    rec["id"] = int(rec["id"]) if rng.random() < v["order_id_number"] else str(rec["id"])
    rec["orderNo"] = maybe_number(rec["orderNo"], v["other_id_number"])
    rec["sellerOrderNumber"] = maybe_number(rec["sellerOrderNumber"], v["digits_text_number"])
    rec["status"] = maybe_text(rec["status"])
    for name in ("purchaseAmount", "domesticPostFee"):
        rec[name] = amount(rec[name])
    r = rng.random()
    if r < v["receiver_undecodable"]:
        rec["receiver"] = rec["receiver"][: len(rec["receiver"]) // 2]
    elif r < v["receiver_undecodable"] + v["receiver_null"]:
        rec["receiver"] = None
    elif r < v["receiver_undecodable"] + v["receiver_null"] + v["receiver_empty"]:
        rec["receiver"] = ""
    elif r < v["receiver_undecodable"] + v["receiver_null"] + v["receiver_empty"] + v["receiver_object"]:
        rec["receiver"] = json.loads(rec["receiver"])
    for sub in rec["subOrderVOS"]:
        sub["subOrderId"] = int(sub["subOrderId"]) if rng.random() < v["order_id_number"] else str(sub["subOrderId"])
        for name in ("itemId", "skuId", "taobaoPurchaseId", "taobaoSubPurchaseId"):
            sub[name] = maybe_number(sub[name], v["other_id_number"])
        for name in ("status", "refundStatus", "quantity"):
            sub[name] = maybe_text(sub[name])
        for name in ("purchaseAmount", "domesticPostFee"):
            sub[name] = amount(sub[name])
    if rng.random() >= v["corrupt_copy"]:
        return [rec]
    copy = {**rec}
    kind = _pick(rng.random(), v["corrupt_kind"])
    if kind == 0:
        copy["purchaseAmount"] = "12.5O"  # a letter O for a zero: not an amount
    elif kind == 1:
        copy["updateTime"] = copy["updateTime"][:5] + "02-30" + copy["updateTime"][10:]  # no such day
    else:
        copy["id"] = None  # a record that cannot be identified
    return [rec, copy]


def _pick(r: float, weights: tuple[float, ...]) -> int:
    for k, w in enumerate(weights):
        if r < w:
            return k
        r -= w
    return len(weights) - 1


# ---------------------------------------------------------------------------------------------
# taobao refunds and logistics on the wire

_CARRIER_CODES = {"中通快递": "ZTO", "圆通速递": "YTO", "韵达快递": "YUNDA", "顺丰速运": "SF",
                  "申通快递": "STO", "极兔速递": "JTSD"}  # fmt: skip
_TIMEOUT_S = {REFUND_APPLIED: 2 * 86_400, REFUND_AGREED: 7 * 86_400,
              REFUND_WAITING_RETURN: 10 * 86_400, REFUND_REFUSED: 7 * 86_400}  # fmt: skip
_TIMEOUT_TYPES = {REFUND_APPLIED: "WAIT_SELLER_AGREE", REFUND_AGREED: "WAIT_BUYER_RETURN_GOODS",
                  REFUND_WAITING_RETURN: "WAIT_SELLER_CONFIRM_GOODS",
                  REFUND_REFUSED: "WAIT_BUYER_MODIFY"}  # fmt: skip
_COLORS = ["黑色", "白色", "灰色", "米白色", "卡其色", "藏青色", "粉色", "浅蓝色"]
_SIZES = ["S", "M", "L", "XL", "XXL", "均码", "36", "38", "40", "大号", "小号"]


def distributor_id(seed: int) -> str:
    """The world's distributor id (the xportcn account on Taobao's distribution platform)."""
    return str(2_206_000_000_000 + _scramble(seed, 6_700_417, 10**9))


def refund_timeout_s(refund_type: int, status: int, since_ms: int) -> int | None:
    """Deadline (epoch s) of the refund's current stage; None once it is over."""
    if status not in _TIMEOUT_S:
        return None
    days = _TIMEOUT_S[status] if (status, refund_type) != (REFUND_AGREED, 1) else 86_400
    return since_ms // 1000 + days


def render_taobao_refund(
    rd: TaobaoRefundDetail,
    order: TaobaoOrderDetail,
    history: list[tuple[int, int]],
) -> dict:
    """A record of the refund list (docs/api-contract.md#54-taobao-refunds); ``history`` = its
    changes up to the clock."""
    line = order.lines[rd.line_index]
    modified_ms, status = history[-1]
    timeout = refund_timeout_s(rd.refund_type, status, modified_ms)
    refused = any(s == REFUND_REFUSED for _, s in history)
    return {
        "refundId": rd.refund_id,
        "orderId": order.order_id if order.id_as_number else str(order.order_id),
        "subOrderId": line.sub_order_id if line.id_as_number else str(line.sub_order_id),
        "purchaseOrderId": line.purchase_id,
        "purchaseOrderLineId": line.sub_purchase_id,
        "salesOrderId": str(order.order_id),
        "refundType": rd.refund_type,
        "goodsStatus": rd.goods_status,
        "refundStatus": status,
        "refundFee": money(rd.fee_cents, line.money_style),
        "currency": "CNY",
        "reasonId": rd.reason_id,
        "reasonDesc": rd.reason_desc,
        "refundDesc": rd.refund_desc,
        "sellerRefuseReason": rd.refuse_reason if refused else None,
        "createTime": rd.create_ms,
        "modifiedTime": modified_ms,
        "timeoutDate": cst_text(timeout) if timeout is not None else None,
    }


def _remaining(seconds: int) -> str:
    seconds = max(0, seconds)
    return f"{seconds // 86_400}天{seconds % 86_400 // 3600}小时{seconds % 3600 // 60}分"


def render_taobao_refund_detail(
    rd: TaobaoRefundDetail,
    order: TaobaoOrderDetail,
    history: list[tuple[int, int]],
    clock_ms: int,
    seed: int,
) -> dict:
    """``data`` of the refund detail (docs/api-contract.md#55-taobao-refund-detail), nested as the
    documentation's example."""
    line = order.lines[rd.line_index]
    modified_ms, status = history[-1]
    seen = {s for _, s in history}
    timeout = refund_timeout_s(rd.refund_type, status, modified_ms)
    returning = rd.refund_type == 2 and REFUND_AGREED in seen
    sent_back = rd.refund_type == 2 and REFUND_WAITING_RETURN in seen
    carrier = _CARRIERS[rd.return_carrier][0]
    price = line.amount_cents // line.quantity
    return {
        "distributorId": distributor_id(seed),
        "currency": "CNY",
        "refundOrderAggregate": {
            "logistics": {
                "receiverAddress": rd.return_address if returning else None,
                "returnGoodsDesc": "退货已寄出，请注意查收" if sent_back else None,
                "buyerPhone": rd.buyer_phone,
                "logisticsCompany": {
                    "logisticsCompanyCode": _CARRIER_CODES[carrier] if sent_back else None,
                    "logisticsCompanyName": carrier if sent_back else None,
                },
                "sellerAgreeReturnDescribe": ("请在包裹内附上订单号，不接受到付" if returning else None),
            },
            "refundOrder": {
                "refundFee": money(rd.fee_cents, 1),
                "payOrderId": rd.pay_order_id,
                "timeoutType": _TIMEOUT_TYPES.get(status) if timeout is not None else None,
                "sellerRefuseReason": rd.refuse_reason if REFUND_REFUSED in seen else None,
                "refundStatus": status,
                "canEditFee": status in (REFUND_APPLIED, REFUND_REFUSED),
                "remainingTime": (_remaining(timeout - clock_ms // 1000) if timeout is not None else None),
                "refundType": rd.refund_type,
                "feeTips": f"最多可退¥{money(line.amount_cents, 0)}",
                "reasonDesc": rd.reason_desc,
                "goodsStatus": rd.goods_status,
                "refundDesc": rd.refund_desc,
                "reasonId": rd.reason_id,
                "timeoutDate": cst_text(timeout) if timeout is not None else None,
                "sellerRefuseReasonDescribe": (
                    f"{rd.refuse_reason}，如有疑问请联系客服" if REFUND_REFUSED in seen else None
                ),
                "refundId": rd.refund_id,
            },
            "purchaseOrderLine": {
                "salesOrderId": str(order.order_id),
                "supplierId": rd.supplier_id,
                "quantity": line.quantity,
                "totalPrice": money(line.amount_cents + line.post_fee_cents, 1),
                "itemTitle": line.title,
                "postFee": money(line.post_fee_cents, 1),
                "productFee": money(line.amount_cents, 1),
                "salesMarket": order.order_source,
                "purchaseOrderLineId": int(line.sub_purchase_id),
                "createTime": order.create_ms,
                "purchaseOrderId": int(line.purchase_id),
                "price": money(price, 1),
            },
        },
    }


def render_taobao_logistics(
    order: TaobaoOrderDetail,
    line: TaobaoLineDetail,
    parcels: tuple[Parcel, ...],
    clock_ms: int,
) -> dict:
    """``data`` of the logistics detail (docs/api-contract.md#56-taobao-logistics) of one purchase
    line at the clock.

    ``parcels`` are the line's plans; a parcel shows once its first event has happened.
    """
    receiver = json.loads(order.receiver)
    clock_s = clock_ms // 1000
    details = []
    for parcel in parcels:
        traces = parcel.visible(clock_s)
        if not traces:
            continue
        h = int(line.sku_id) if line.sku_id.isdigit() else 0
        details.append(
            {
                "mailNo": parcel.tracking_number,
                "logisticsTraces": [
                    {
                        "statusDesc": tr.status_desc,
                        "province": tr.province,
                        "city": tr.city,
                        "district": tr.district,
                        "action": tr.action,
                        "facilityName": tr.facility,
                        "time": cst_text(tr.time_s),
                        "standerdDesc": tr.standard_desc,
                        "status": tr.status,
                        "nextCity": tr.next_city,
                        "nextNodeName": tr.next_node,
                    }
                    for tr in traces
                ],
                "logisticsPartner": [
                    {
                        "companyImageUrl": f"https://img.alicdn.com/tfs/logistics/{CARRIER_LOGOS[parcel.carrier]}.png",
                        "company": parcel.carrier,
                        "companyContact": CARRIER_CONTACTS[parcel.carrier],
                    }
                ],
                "receiver": {
                    "zipCode": receiver["zip"],
                    "address": receiver["address"],
                    "province": receiver["state"],
                    "city": receiver["city"],
                    "district": receiver["district"],
                    "phone": receiver["phone"],
                    "name": receiver["name"],
                },
                "logisticsGoods": [
                    {
                        "title": line.title,
                        "property": f"颜色分类:{_COLORS[h % len(_COLORS)]};尺码:{_SIZES[h // 7 % len(_SIZES)]}",
                        "imageUrl": f"https://img.alicdn.com/bao/uploaded/i{h % 4 + 1}/"
                        f"{line.item_id}/O1CN01{h % 10**10:010d}.jpg",
                        "quantity": str(parcel.quantity),
                    }
                ],
            }
        )
    return {"purchaseOrderOuterId": line.sub_purchase_id, "pnmLogisticsDetails": details}


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
        # imported here: alibaba.py builds on this module's helpers
        from xport_sandbox.alibaba import AlibabaOrderStore

        self.alibaba = AlibabaOrderStore(self.config, self.catalog)
        self._ensure(self._clock.ms)

    def _ensure(self, clock_ms: int) -> None:
        self.taobao.ensure(clock_ms)
        self.alibaba.ensure(clock_ms)

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
            self._ensure(self._clock.ms)
            return self.clock

    def set_clock(self, when: datetime) -> datetime:
        """Move the clock to ``when`` (tz-aware, not before the current clock)."""
        ms = to_ms(when)
        with self.lock:
            if ms < self._clock.ms:
                raise ValueError(f"the clock only moves forward: {when.isoformat()} < {self.clock.isoformat()}")
            self._clock.ms = ms
            self._ensure(ms)
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
        return render_taobao_order(self.taobao.detail(index), self.taobao.state(index, clock_ms), clock_ms)

    def taobao_page(self, page_no: int, page_size: int, **filters) -> tuple[int, list[dict]]:
        """Total matching orders and the wire records of one page (1-based), newest first
        (with ``WorldConfig.variety``: in the varied wire forms, see :func:`vary_taobao_order`)."""
        total, records = _page(*self.taobao_query(**filters), self.render_taobao, page_no, page_size)
        if self.config.variety:
            varied: list[dict] = []
            for rec in records:
                order_id = int(rec["id"])
                rng = random.Random((self.config.seed << 72) ^ (_VARIETY_TAG << 64) ^ order_id ^ (page_no << 100))
                varied.extend(vary_taobao_order(rec, rng, MIXES[self.config.mix]))
            records = varied
        if self.config.null_id_copies:
            records = self._with_null_id_copies(records, page_no)
        return total, records

    def _with_null_id_copies(self, records: list[dict], page_no: int) -> list[dict]:
        """``records`` with a copy whose id is null after a ``WorldConfig.null_id_copies`` share of
        them (a reject; its own random stream, so the other forms are drawn as without it)."""
        out: list[dict] = []
        for rec in records:
            out.append(rec)
            if rec.get("id") is None:  # a copy already
                continue
            rng = random.Random((self.config.seed << 72) ^ (_NULL_ID_TAG << 64) ^ int(rec["id"]) ^ (page_no << 100))
            if rng.random() < self.config.null_id_copies:
                out.append({**rec, "id": None})
        return out

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

    def warm(self) -> int:
        """Build the static details of every order visible now (both platforms), once.

        Details are generated on first use and kept in an LRU cache of ``detail_cache`` orders;
        generating them is most of what the first pass over a large world costs (about 80 µs an
        order, against about 20 µs to render a cached one). A server whose cache holds the whole
        world (``detail_cache`` >= its orders; about 4.5 KB an order) serves every later page
        from memory, as a real API serves rows from its database. Returns the orders built.
        """
        with self.lock:
            clock_ms = self._clock.ms
            stores = (self.taobao, self.alibaba)
            counts = [store.count_visible(clock_ms) for store in stores]
        for store, n in zip(stores, counts, strict=True):
            for i in range(n):
                store.detail(i)
        return sum(counts)

    # -- taobao refunds --------------------------------------------------------------------

    def taobao_refund_query(
        self,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        refund_id: str | None = None,
        purchase_order_id: str | None = None,
        sales_order_id: str | None = None,
        refund_status: int | None = None,
    ) -> tuple[int, list[int]]:
        """The clock (ms) and the refunds matching the filters, newest first.

        ``start_ms``/``end_ms`` bound the refund's creation time (epoch ms, inclusive/exclusive).
        """
        with self.lock:
            clock_ms = self._clock.ms
            return clock_ms, self.taobao.select_refunds(
                clock_ms,
                start_ms=start_ms,
                end_ms=end_ms,
                refund_id=refund_id,
                purchase_order_id=purchase_order_id,
                sales_order_id=sales_order_id,
                refund_status=refund_status,
            )

    def render_taobao_refund(self, r: int, clock_ms: int) -> dict:
        """Wire record (docs/api-contract.md#54-taobao-refunds) of refund ``r`` at ``clock_ms``."""
        rd = self.taobao.refund_detail(r)
        return render_taobao_refund(rd, self.taobao.detail(rd.order_index), self.taobao.refund_history(r, clock_ms))

    def taobao_refund_page(self, page_no: int, page_size: int, **filters) -> tuple[int, list[dict]]:
        """Total matching refunds and the records of one page (1-based), newest first."""
        return _page(*self.taobao_refund_query(**filters), self.render_taobao_refund, page_no, page_size)

    def taobao_refunds(self, **filters) -> list[dict]:
        """Every matching refund record (docs/api-contract.md#54-taobao-refunds) at the current
        clock, newest first."""
        clock_ms, selected = self.taobao_refund_query(**filters)
        return [self.render_taobao_refund(r, clock_ms) for r in selected]

    def taobao_refund(self, refund_id: str) -> dict | None:
        """The refund detail (docs/api-contract.md#55-taobao-refund-detail), or None if no such
        refund exists (yet)."""
        with self.lock:
            clock_ms = self._clock.ms
            r = self.taobao.find_refund(str(refund_id), clock_ms)
            if r is None:
                return None
            rd = self.taobao.refund_detail(r)
            return render_taobao_refund_detail(
                rd,
                self.taobao.detail(rd.order_index),
                self.taobao.refund_history(r, clock_ms),
                clock_ms,
                self.config.seed,
            )

    def iter_taobao_refunds(
        self,
    ) -> Iterator[tuple[TaobaoRefundDetail, TaobaoOrderDetail, list[tuple[int, int]]]]:
        """Every refund existing at the clock with its order and its changes so far, by
        creation time."""
        with self.lock:
            clock_ms = self._clock.ms
            visible = self.taobao._rf_sorted[: self.taobao.count_refunds_visible(clock_ms)]
        for _, _, r in visible:
            rd = self.taobao.refund_detail(r)
            yield rd, self.taobao.detail(rd.order_index), self.taobao.refund_history(r, clock_ms)

    # -- taobao logistics ------------------------------------------------------------------

    def taobao_logistics(self, sub_purchase_id: str | int) -> dict | None:
        """The logistics detail (docs/api-contract.md#56-taobao-logistics) of a purchase line, or
        None if unknown."""
        with self.lock:
            clock_ms = self._clock.ms
            found = self.taobao.find_sub_purchase(str(sub_purchase_id), clock_ms)
            if found is None:
                return None
            i, n = found
            detail = self.taobao.detail(i)
            shipped = self.taobao.state(i, clock_ms).status == SHIPPED
            parcels = self.taobao.parcels(i, n) if shipped else ()
            return render_taobao_logistics(detail, detail.lines[n], parcels, clock_ms)

    def iter_taobao_parcels(self) -> Iterator[tuple[TaobaoOrderDetail, TaobaoLineDetail, Parcel]]:
        """Every Taobao parcel with at least one event at the clock, with its order and line;
        ``parcel.visible(clock_s)`` gives the events so far."""
        with self.lock:
            clock_ms = self._clock.ms
            statuses, _ = self.taobao.states(clock_ms)
        clock_s = clock_ms // 1000
        for i, status in enumerate(statuses):
            if status != SHIPPED:
                continue
            detail = self.taobao.detail(i)
            for n, line in enumerate(detail.lines):
                for parcel in self.taobao.parcels(i, n):
                    if parcel.first_s <= clock_s:
                        yield detail, line, parcel

    # -- 1688 ------------------------------------------------------------------------------

    def alibaba_query(
        self,
        *,
        status: str | None = None,
        create_start: datetime | None = None,
        create_end: datetime | None = None,
        modify_start: datetime | None = None,
        modify_end: datetime | None = None,
    ) -> tuple[int, list[int] | range]:
        """The clock (ms) and the indices of matching 1688 orders, newest first.

        ``status`` is a 1688 status string; an unknown one matches nothing.
        """
        from xport_sandbox.alibaba import STATUS_CODE

        def sec(dt: datetime | None) -> int | None:
            return None if dt is None else -(-to_ms(dt) // 1000)

        code = None
        if status is not None:
            code = STATUS_CODE.get(status)
            if code is None:
                with self.lock:
                    return self._clock.ms, []
        with self.lock:
            clock_ms = self._clock.ms
            return clock_ms, self.alibaba.select(
                clock_ms,
                status=code,
                create_start_s=sec(create_start),
                create_end_s=sec(create_end),
                modify_start_s=sec(modify_start),
                modify_end_s=sec(modify_end),
            )

    def render_1688(self, index: int, clock_ms: int) -> dict:
        """Wire record (docs/api-contract.md#57-1688-orders) of the 1688 order with index ``index``
        at ``clock_ms``."""
        from xport_sandbox.alibaba import render_1688_order

        return render_1688_order(self.alibaba.detail(index), self.alibaba.state(index, clock_ms))

    def alibaba_page(self, page_no: int, page_size: int, **filters) -> tuple[int, list[dict]]:
        """Total matching 1688 orders and the records of one page (1-based), newest first."""
        return _page(*self.alibaba_query(**filters), self.render_1688, page_no, page_size)

    def alibaba_orders(self, **filters) -> list[dict]:
        """Every matching 1688 order record at the current clock, newest first."""
        clock_ms, indices = self.alibaba_query(**filters)
        return [self.render_1688(i, clock_ms) for i in indices]

    def alibaba_order(self, order_id: str | int) -> dict | None:
        """One 1688 order record by ``orderId``, or None."""
        with self.lock:
            clock_ms = self._clock.ms
            i = self.alibaba.find_order_id(str(order_id), clock_ms)
            return None if i is None else self.render_1688(i, clock_ms)

    def alibaba_refund(self, refund_id: str) -> dict | None:
        """The 1688 refund detail (docs/api-contract.md#58-1688-refunds), or None if no such refund
        exists (yet)."""
        from xport_sandbox.alibaba import render_1688_refund

        with self.lock:
            clock_ms = self._clock.ms
            r = self.alibaba.find_refund(str(refund_id), clock_ms)
            if r is None:
                return None
            rd = self.alibaba.refund_detail(r)
            history = self.alibaba.refund_history(r, clock_ms // 1000)
            return render_1688_refund(rd, self.alibaba.detail(rd.order_index), history)

    def alibaba_logistics(self, order_id: str | int) -> dict | None:
        """The 1688 logistics trace (docs/api-contract.md#59-1688-logistics) of an order, or None if
        unknown."""
        from xport_sandbox.alibaba import render_1688_logistics

        with self.lock:
            clock_ms = self._clock.ms
            i = self.alibaba.find_order_id(str(order_id), clock_ms)
            if i is None:
                return None
            state = self.alibaba.state(i, clock_ms)
            parcels = self.alibaba.parcels(i) if state.ship_s is not None else ()
            return render_1688_logistics(self.alibaba.detail(i), parcels, clock_ms)

    def iter_1688_plans(self) -> Iterator[tuple[Any, Any]]:
        """Static details and current state of every visible 1688 order, oldest first."""
        with self.lock:
            clock_ms = self._clock.ms
            n = self.alibaba.count_visible(clock_ms)
        for i in range(n):
            yield self.alibaba.detail(i), self.alibaba.state(i, clock_ms)

    def iter_1688_refunds(self) -> Iterator[tuple[Any, Any, list[tuple[int, int]]]]:
        """Every 1688 refund existing at the clock: its static detail, its order's detail and its
        ``(epoch s, status)`` changes so far."""
        with self.lock:
            clock_s = self._clock.ms // 1000
            refunds = list(range(len(self.alibaba.rf_order)))
        for r in refunds:
            history = self.alibaba.refund_history(r, clock_s)
            if history:
                rd = self.alibaba.refund_detail(r)
                yield rd, self.alibaba.detail(rd.order_index), history

    def iter_1688_parcels(self) -> Iterator[tuple[Any, Any, int, Parcel]]:
        """Every 1688 parcel with at least one step at the clock: the order's detail and state,
        the parcel's position in the order and its plan."""
        with self.lock:
            clock_ms = self._clock.ms
        clock_s = clock_ms // 1000
        for detail, state in self.iter_1688_plans():
            if state.ship_s is None:
                continue
            for p, parcel in enumerate(self.alibaba.parcels(detail.index)):
                if parcel.first_s <= clock_s:
                    yield detail, state, p, parcel


def _page(clock_ms: int, selected, render, page_no: int, page_size: int) -> tuple[int, list[dict]]:
    """Total of a query's matches and the wire records of one page (1-based) of them."""
    start = (page_no - 1) * page_size
    return len(selected), [render(i, clock_ms) for i in selected[start : start + page_size]]
