-- one row per (platform, order_id, line_id)
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_order_lines
select platform, order_id, line_id, count(*) as copies
from fct_order_lines
group by all
having count(*) > 1
