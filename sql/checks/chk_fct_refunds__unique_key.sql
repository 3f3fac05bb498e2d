-- one row per (platform, refund_id)
select platform, refund_id, count(*) as copies
from fct_refunds
group by all
having count(*) > 1
