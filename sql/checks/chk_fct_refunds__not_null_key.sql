select *
from fct_refunds
where platform is null or refund_id is null
