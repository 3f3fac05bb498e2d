select *
from fct_order_lines
where platform is null or order_id is null or line_id is null or line_index is null
