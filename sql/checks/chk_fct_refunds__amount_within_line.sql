-- a refund never exceeds the amount of the line it refunds
select r.platform, r.refund_id, r.refund_amount, l.amount as line_amount
from fct_refunds as r
inner join fct_order_lines as l
    on l.platform = r.platform and l.order_id = r.order_id and l.line_id = r.line_id
where r.refund_amount > l.amount
