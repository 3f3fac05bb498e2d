"""What the API serves (``docs/api-contract.md``): records of every endpoint as the contract writes
them, each builder taking the fields to replace, and the page bytes around records and answers."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from xport_etl import jsonutil

# ---- pages


def envelope(data: Any, code: int = 200) -> bytes:
    """The bytes of an answer: the envelope (``requestId``, ``code``, ``developId``, ``msg``)
    around ``data``, as UTF-8 JSON with Decimals written as numbers."""
    answer = {"requestId": "r", "code": code, "developId": 1, "msg": "成功", "data": data}
    return jsonutil.dumps(answer, floats="allow").encode()


def page(records: list, code: int = 200) -> bytes:
    """The bytes of a list page holding ``records`` (the only page: ``current`` 1 of 1)."""
    return envelope({"records": records, "total": len(records), "size": 100, "current": 1, "pages": 1}, code)


# ---- Taobao orders (docs/api-contract.md §5.1)


def order(**over: Any) -> dict:
    """A Taobao order record of one line (:func:`sub`) created 2026-02-01 07:59:59 CST, with
    ``over`` replacing fields: 12.50 of goods and 3.00 of domestic shipping."""
    base = {
        "id": "1031992847890383164",
        "orderNo": "88001",
        "status": 10,
        "orderSource": "lazada",
        "sellerOrderNumber": "LZ-1",
        "purchaseAmount": "12.50",
        "purchaseCurrency": "CNY",
        "domesticPostFee": Decimal("3.00"),
        "receiver": json.dumps({"name": "张三", "country": "MY"}, ensure_ascii=False),
        "createTime": "2026-02-01 07:59:59",
        "payTime": None,
        "updateTime": "2026-02-01 08:00:00",
        "subOrderVOS": [sub()],
    }
    base.update(over)
    return base


def sub(**over: Any) -> dict:
    """A Taobao sub-order (``subOrderVOS[i]``) of :func:`order`, with ``over`` replacing fields."""
    base = {
        "subOrderId": "1031992847890383165",
        "orderNo": "88001",
        "itemId": "6512345",
        "skuId": "4970432383383",
        "title": "2026新款 纯棉 短袖T恤",
        "quantity": 2,
        "purchaseAmount": "12.50",
        "purchaseCurrency": "CNY",
        "domesticPostFee": 0,
        "status": 10,
        "refundStatus": 0,
        "taobaoPurchaseId": "200027842447",
        "taobaoSubPurchaseId": "200027842448",
    }
    base.update(over)
    return base


# ---- Taobao refunds and refund detail (§5.4, §5.5)


def taobao_refund(**over):
    """A record of the Taobao refund list: a refund of order line ``1031992847890383165``, 12.50
    CNY, succeeded (100), its times epoch milliseconds as a number and as a string."""
    base = {
        "refundId": "300000000001",
        "orderId": "1031992847890383164",
        "subOrderId": "1031992847890383165",
        "purchaseOrderId": "200027842447",
        "purchaseOrderLineId": "200027842448",
        "salesOrderId": "88001",
        "refundType": 1,
        "goodsStatus": 1,
        "refundStatus": 100,
        "refundFee": "12.50",
        "currency": "CNY",
        "reasonId": 3,
        "reasonDesc": "七天无理由",
        "refundDesc": None,
        "createTime": 1767225600000,
        "modifiedTime": "1767229200000",
        "timeoutDate": "2026-01-08 08:00:00",
    }
    base.update(over)
    return base


def taobao_refund_detail(**refund_over):
    """A Taobao refund detail answer (the public documentation's nesting), its ``refundOrder``
    fields replaced by ``refund_over``: 19.90 CNY, agreed (20), the line's money in fen."""
    refund_order = {
        "refundFee": Decimal("19.9"),
        "payOrderId": "",
        "timeoutType": "",
        "sellerRefuseReason": "",
        "refundStatus": 20,
        "canEditFee": False,
        "remainingTime": "",
        "refundType": 2,
        "feeTips": "",
        "reasonDesc": "尺码不合适",
        "goodsStatus": 2,
        "refundDesc": "",
        "reasonId": 7,
        "timeoutDate": "2026-01-08 08:00:00",
        "sellerRefuseReasonDescribe": "",
        "refundId": "300000000009",
    }
    refund_order.update(refund_over)
    return {
        "distributorId": "2200000001",
        "currency": "CNY",
        "refundOrderAggregate": {
            "logistics": {
                "receiverAddress": "",
                "returnGoodsDesc": "",
                "buyerPhone": "",
                "logisticsCompany": {"logisticsCompanyCode": "", "logisticsCompanyName": ""},
                "sellerAgreeReturnDescribe": "",
            },
            "refundOrder": refund_order,
            "purchaseOrderLine": {
                "salesOrderId": "88001",
                "supplierId": 1,
                "quantity": 1,
                "totalPrice": 1990,
                "itemTitle": "短袖T恤",
                "postFee": 0,
                "productFee": 1990,
                "salesMarket": "",
                "purchaseOrderLineId": 200027842448,
                "createTime": 1767139200000,
                "purchaseOrderId": 200027842447,
                "price": 1990,
            },
        },
    }


# ---- Taobao logistics (§5.6)


def logistics(parcels, line_id="200027842448"):
    """A Taobao logistics detail answer of one purchase line holding ``parcels`` (:func:`parcel`)."""
    return {"purchaseOrderOuterId": line_id, "pnmLogisticsDetails": parcels}


def parcel(mail_no, traces, company="中通快递"):
    """A Taobao parcel ``mail_no`` of ``company`` with its ``traces`` (:func:`trace`)."""
    return {
        "mailNo": mail_no,
        "logisticsTraces": traces,
        "logisticsPartner": [{"companyImageUrl": "", "company": company, "companyContact": "95311"}],
        "receiver": {
            "zipCode": "510000",
            "address": "仓库",
            "province": "广东省",
            "city": "广州市",
            "district": "白云区",
            "phone": "",
            "name": "仓库",
        },
        "logisticsGoods": [{"title": "短袖T恤", "property": "白色 L", "imageUrl": "", "quantity": "2"}],
    }


def trace(time, status, desc="", city="杭州市"):
    """One trace of a Taobao parcel: at ``time`` (CST text), ``status`` (ACCEPT, TRANSPORT, SIGN...)."""
    return {
        "statusDesc": desc,
        "province": "浙江省",
        "city": city,
        "district": "余杭区",
        "action": status,
        "facilityName": "杭州转运中心",
        "time": time,
        "standerdDesc": desc,
        "status": status,
        "nextCity": "",
        "nextNodeName": "",
    }


# ---- 1688 orders, refunds and logistics (§5.7–§5.9)


def alibaba_order(**over):
    """A 1688 order in the flat shape, dashed CST times, one item (:func:`item`): 38.00 in all,
    8 of shipping, waiting for the seller to send."""
    base = {
        "orderId": "3012345678901234567",
        "webSite": "1688",
        "status": "waitsellersend",
        "sellerLoginId": "杭州某某工厂",
        "sellerCompanyName": "杭州某某有限公司",
        "totalAmount": "38.00",
        "shippingFee": 8,
        "discount": "0",
        "currency": "CNY",
        "createTime": "2026-03-01 07:59:59",
        "payTime": "2026-03-01 08:10:00",
        "allDeliveredTime": None,
        "completeTime": None,
        "modifyTime": "2026-03-01 08:10:00",
        "productItems": [item()],
    }
    base.update(over)
    return base


def item(**over):
    """A 1688 order item (``productItems[i]``): 3 × 10.00, no refund."""
    base = {
        "subItemId": "3012345678901234568",
        "productId": 612345678901,
        "skuId": "4970432383383",
        "specId": "b1c2",
        "name": "加厚 保温杯 500ml",
        "quantity": 3,
        "price": "10.00",
        "itemAmount": "30.00",
        "unit": "个",
        "status": "waitsellersend",
        "refundStatus": None,
        "refundId": None,
        "logisticsStatus": 1,
    }
    base.update(over)
    return base


def alibaba_refund(**over):
    """A 1688 refund answer of the item of :func:`alibaba_order`: 19.99 (in fen), succeeded."""
    base = {
        "id": 99001,
        "refundId": "TQ25987654321",
        "orderId": "3012345678901234567",
        "subItemId": "3012345678901234568",
        "status": "refundsuccess",
        "createTime": "2026-03-01 07:30:00",
        "updateTime": "2026-03-02 09:00:00",
        "applyPayment": 1999,
        "applyCarriage": 0,
        "applyReason": "商品质量问题",
        "applyReasonId": 5,
        "buyerSendGoods": False,
        "refundPayment": 1999,
    }
    base.update(over)
    return base


def alibaba_trace(bill_no, steps, company="圆通速递"):
    """One parcel ``bill_no`` of a 1688 logistics trace answer, with its ``steps`` (like :data:`STEPS`)."""
    return {
        "logisticsId": "LP001",
        "logisticsBillNo": bill_no,
        "logisticsCompanyName": company,
        "logisticsSteps": steps,
    }


# three steps of a 1688 parcel, collected to signed, in the API's order
STEPS = [
    {"acceptTime": "2026-03-02 10:00:00", "remark": "已揽件"},
    {"acceptTime": "2026-03-03 18:30:00", "remark": "派送中"},
    {"acceptTime": "2026-03-04 08:00:00", "remark": "已签收"},
]


# ---- 1688 orders in both shapes (flat, nested baseInfo) and both time formats (§5.7)

ORDER_TIMES_1688 = ("createTime", "payTime", "allDeliveredTime", "completeTime", "modifyTime")


def compact(text, offset="+0800"):
    """A ``yyyy-MM-dd HH:mm:ss`` CST time written as 1688 writes it: ``yyyyMMddHHmmssSSS+0800``."""
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y%m%d%H%M%S") + "000" + offset


def nested(rec, *, times=()):
    """The flat record in 1688's own shape; the ``times`` named are written compact."""
    base = {k: (compact(v) if k in times else v) for k, v in rec.items() if k != "productItems"}
    return {
        "baseInfo": base,
        "productItems": rec.get("productItems"),
        "nativeLogistics": {
            "province": "浙江省",
            "city": "金华市",
            "address": "春晗路88号",
            "zip": "322000",
            "contactPerson": "张三",
        },
    }


def with_compact_times(rec, times=ORDER_TIMES_1688):
    """The flat record with the ``times`` named written compact (:func:`compact`)."""
    return {k: (compact(v) if k in times else v) for k, v in rec.items()}
