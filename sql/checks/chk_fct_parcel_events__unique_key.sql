-- one row per (platform, tracking_number, event_index)
select platform, tracking_number, event_index, count(*) as copies
from fct_parcel_events
group by all
having count(*) > 1
