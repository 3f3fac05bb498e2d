-- one row per (platform, tracking_number)
select platform, tracking_number, count(*) as copies
from fct_parcels
group by all
having count(*) > 1
