"""Parcel tracking plans shared by both platforms: where a parcel goes and when each event happens.

A parcel's *plan* is its full list of tracking events, past and future, drawn once from its own
random stream; what the API shows at clock ``T`` is the prefix of events at or before ``T``.
Taobao serves every field of a ``Trace`` (docs/api-contract.md#56-taobao-logistics); 1688 serves
only the time and a remark (its ``standard_desc``, docs/api-contract.md#59-1688-logistics).

This module depends on nothing else in the sandbox, so both order stores can use it.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, replace

# trace status codes (docs/api-contract.md#56-taobao-logistics)
ACCEPT, TRANSPORT, DELIVERING, SIGN, FAILED, REJECT = (
    "ACCEPT",
    "TRANSPORT",
    "DELIVERING",
    "SIGN",
    "FAILED",
    "REJECT",
)
STATUS_DESC = {
    ACCEPT: "已揽件",
    TRANSPORT: "运输中",
    DELIVERING: "派送中",
    SIGN: "已签收",
    FAILED: "派送失败",
    REJECT: "拒收",
}

# how a parcel's journey ends
END_SIGN, END_FAILED, END_REJECT, END_STUCK, END_STUCK_LATE_SIGN = range(5)

# (province, city, district, pick-up station)
ORIGINS = [
    ("浙江省", "金华市", "义乌市", "北苑"),
    ("浙江省", "杭州市", "余杭区", "临平"),
    ("广东省", "广州市", "白云区", "三元里"),
    ("广东省", "深圳市", "宝安区", "西乡"),
    ("福建省", "泉州市", "晋江市", "陈埭"),
    ("江苏省", "苏州市", "常熟市", "虞山"),
    ("上海市", "上海市", "松江区", "九亭"),
    ("广东省", "汕头市", "澄海区", "莲下"),
    ("浙江省", "温州市", "瓯海区", "娄桥"),
    ("河北省", "保定市", "白沟新城", "白沟"),
    ("广东省", "东莞市", "虎门镇", "虎门"),
    ("浙江省", "宁波市", "慈溪市", "浒山"),
]
# hub city of each province, for the trunk legs
_HUBS = {
    "浙江省": ("浙江省", "杭州市", "萧山区", "杭州转运中心"),
    "广东省": ("广东省", "广州市", "花都区", "广州转运中心"),
    "福建省": ("福建省", "泉州市", "南安市", "泉州转运中心"),
    "江苏省": ("江苏省", "苏州市", "吴中区", "苏州转运中心"),
    "上海市": ("上海市", "上海市", "青浦区", "上海转运中心"),
    "河北省": ("河北省", "石家庄市", "正定县", "石家庄转运中心"),
}
CARRIER_CONTACTS = {
    "中通快递": "95311",
    "圆通速递": "95554",
    "韵达快递": "95546",
    "顺丰速运": "95338",
    "申通快递": "95543",
    "极兔速递": "956025",
}
CARRIER_LOGOS = {
    "中通快递": "zto",
    "圆通速递": "yto",
    "韵达快递": "yunda",
    "顺丰速运": "sf",
    "申通快递": "sto",
    "极兔速递": "jtexpress",
}
_COURIERS = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


@dataclass(frozen=True, slots=True)
class Trace:
    """One tracking event (every field of a Taobao ``logisticsTraces[]`` entry)."""

    time_s: int
    status: str
    status_desc: str
    standard_desc: str
    action: str
    province: str
    city: str
    district: str
    facility: str
    next_city: str | None
    next_node: str | None


@dataclass(frozen=True, slots=True)
class Parcel:
    """A parcel's plan: its tracking number, carrier and every event, past and future."""

    tracking_number: str
    carrier: str
    quantity: int  # goods in the parcel (Taobao ``logisticsGoods[].quantity``)
    traces: tuple[Trace, ...]
    times: tuple[int, ...]  # traces' times, for bisect

    def visible(self, clock_s: int) -> tuple[Trace, ...]:
        """The events that happened at or before ``clock_s``, oldest first."""
        return self.traces[: bisect.bisect_right(self.times, clock_s)]

    @property
    def first_s(self) -> int:
        return self.times[0]


def draw_end(rng: random.Random) -> int:
    """How a parcel's journey ends: mostly signed, a few failed, rejected or stuck."""
    u = rng.random()
    if u < 0.88:
        return END_SIGN
    if u < 0.91:
        return END_FAILED
    if u < 0.93:
        return END_REJECT
    return END_STUCK if u < 0.965 else END_STUCK_LATE_SIGN


def plan_traces(
    rng: random.Random,
    start_s: int,
    carrier: str,
    origin: tuple[str, str, str, str],
    dest: tuple[str, str, str],
    end: int,
) -> list[Trace]:
    """Every event of one parcel from pick-up at ``start_s`` to its end (see ``END_*``).

    ``dest`` is ``(province, city, district)`` of the receiver (a warehouse).
    """
    o_prov, o_city, o_dist, o_station = origin
    d_prov, d_city, d_dist = dest
    o_facility = f"{carrier}{o_dist}{o_station}网点"
    d_facility = f"{carrier}{d_city}{d_dist}营业部"
    o_hub = _HUBS.get(o_prov, (o_prov, o_city, o_dist, f"{o_city[:-1]}转运中心"))
    d_hub = _HUBS.get(d_prov, (d_prov, d_city, d_dist, f"{d_city[:-1]}转运中心"))
    out: list[Trace] = []
    t = start_s

    def add(
        gap_lo: int,
        gap_hi: int,
        status: str,
        text: str,
        action: str,
        place: tuple[str, str, str],
        facility: str,
        next_city: str | None = None,
        next_node: str | None = None,
    ) -> None:
        nonlocal t
        if out:
            t += rng.randint(gap_lo, gap_hi)
        out.append(
            Trace(
                t,
                status,
                STATUS_DESC[status],
                text,
                action,
                *place,
                facility,
                next_city,
                next_node,
            )
        )

    o_place, d_place = (o_prov, o_city, o_dist), (d_prov, d_city, d_dist)
    add(0, 0, ACCEPT, f"【{o_city}】{o_facility} 已揽收", "GOT", o_place, o_facility)
    add(
        1800,
        4 * 3600,
        TRANSPORT,
        f"【{o_city}】快件已从{o_facility}发出，准备发往{o_hub[3]}",
        "DEPARTURE",
        o_place,
        o_facility,
        o_hub[1],
        o_hub[3],
    )
    add(
        3600,
        6 * 3600,
        TRANSPORT,
        f"【{o_hub[1]}】快件已到达{o_hub[3]}",
        "ARRIVAL",
        o_hub[:3],
        o_hub[3],
    )
    if o_hub != d_hub:
        add(
            1800,
            8 * 3600,
            TRANSPORT,
            f"【{o_hub[1]}】快件已从{o_hub[3]}发出，准备发往{d_hub[3]}",
            "DEPARTURE",
            o_hub[:3],
            o_hub[3],
            d_hub[1],
            d_hub[3],
        )
        add(
            6 * 3600,
            30 * 3600,
            TRANSPORT,
            f"【{d_hub[1]}】快件已到达{d_hub[3]}",
            "ARRIVAL",
            d_hub[:3],
            d_hub[3],
        )
    add(
        1800,
        8 * 3600,
        TRANSPORT,
        f"【{d_hub[1]}】快件已从{d_hub[3]}发出，准备发往{d_facility}",
        "DEPARTURE",
        d_hub[:3],
        d_hub[3],
        d_city,
        d_facility,
    )
    if end == END_STUCK:
        return out  # never moves again
    if end == END_STUCK_LATE_SIGN:
        t += rng.randint(10 * 86_400, 25 * 86_400)
    courier = rng.choice(_COURIERS)
    phone = f"1{rng.choice('3578')}{rng.randrange(10**8, 10**9)}"
    add(
        2 * 3600,
        10 * 3600,
        DELIVERING,
        f"【{d_city}】{d_facility}快递员{courier}师傅正在派件（电话：{phone}）",
        "SENT_SCAN",
        d_place,
        d_facility,
    )
    if end == END_FAILED:
        add(
            3600,
            8 * 3600,
            FAILED,
            f"【{d_city}】快件派送不成功，原因：仓库已下班/无法联系收件人，待再次派送",
            "FAILED",
            d_place,
            d_facility,
        )
    elif end == END_REJECT:
        add(
            1800,
            6 * 3600,
            REJECT,
            f"【{d_city}】收件人拒收，快件将退回寄件人",
            "REJECTED",
            d_place,
            d_facility,
        )
    else:
        add(
            1800,
            6 * 3600,
            SIGN,
            f"【{d_city}】您的快件已签收，签收人：仓库代收。如有疑问请联系快递员{courier}师傅",
            "SIGNED",
            d_place,
            d_facility,
        )
    return out


def fit_times(traces: list[Trace], start_s: int, end_s: int) -> list[Trace]:
    """The same events stretched or squeezed so they run from ``start_s`` to ``end_s``.

    Keeps the shape of the journey and strictly increasing seconds.
    """
    n = len(traces)
    if n == 1:
        return [_at(traces[0], start_s)]
    first, last = traces[0].time_s, traces[-1].time_s
    span = max(1, last - first)
    end_s = max(end_s, start_s + n)
    out, prev = [], start_s - 1
    for k, tr in enumerate(traces):
        t = start_s + (tr.time_s - first) * (end_s - start_s) // span
        t = max(t, prev + 1)
        t = min(t, end_s - (n - 1 - k))
        out.append(_at(tr, t))
        prev = t
    return out


def _at(trace: Trace, time_s: int) -> Trace:
    return replace(trace, time_s=time_s)


def make_parcel(tracking_number: str, carrier: str, quantity: int, traces: list[Trace]) -> Parcel:
    return Parcel(tracking_number, carrier, quantity, tuple(traces), tuple(tr.time_s for tr in traces))
