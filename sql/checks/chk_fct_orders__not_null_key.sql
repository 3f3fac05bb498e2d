-- no fct_orders row has a null key column
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
select *
from fct_orders
where platform is null or order_id is null
