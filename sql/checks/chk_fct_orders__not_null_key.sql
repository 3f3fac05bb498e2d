select *
from fct_orders
where platform is null or order_id is null
