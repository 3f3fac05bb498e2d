-- a refund never exceeds what was paid for the line it refunds: the line amount, plus the order's
-- shipping (1688 refunds return carriage too: refundPayment = applyPayment + applyCarriage).
-- every amount here is the source's own: a refund above it is the source disagreeing with itself,
-- reported here rather than withholding the whole load. XPORT_CHECK_OVERRIDES can make it blocking.
-- severity: warn
select r.platform, r.refund_id, r.refund_amount, l.amount as line_amount, o.shipping_amount
from fct_refunds as r
inner join fct_order_lines as l
    on l.platform = r.platform and l.order_id = r.order_id and l.line_id = r.line_id
inner join fct_orders as o
    on o.platform = l.platform and o.order_id = l.order_id
where r.refund_amount > l.amount + coalesce(o.shipping_amount, 0)
