-- no fct_refunds row has a null key column
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
select *
from fct_refunds
where platform is null or refund_id is null
