-- every line belongs to an order that is in fct_orders
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_order_lines
select l.platform, l.order_id, l.line_id
from fct_order_lines as l
anti join fct_orders as o
    on o.platform = l.platform and o.order_id = l.order_id
