-- one row per (platform, order_id)
select platform, order_id, count(*) as copies
from fct_orders
group by all
having count(*) > 1
