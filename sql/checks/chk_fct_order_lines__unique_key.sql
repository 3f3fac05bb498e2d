-- one row per (platform, order_id, line_id)
select platform, order_id, line_id, count(*) as copies
from fct_order_lines
group by all
having count(*) > 1
