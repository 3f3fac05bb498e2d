-- one row per (platform, order_id)
-- a violation lies within one merge key (see load.run_checks): a load re-checks the keys it merged
-- scope: fct_orders
select platform, order_id, count(*) as copies
from fct_orders
group by all
having count(*) > 1
