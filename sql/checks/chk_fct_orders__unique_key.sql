-- one row per (platform, order_id)
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_orders
select platform, order_id, count(*) as copies
from fct_orders
group by all
having count(*) > 1
