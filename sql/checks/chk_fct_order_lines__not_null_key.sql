-- no fct_order_lines row has a null key column
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
select *
from fct_order_lines
where platform is null or order_id is null or line_id is null or line_index is null
