-- one row per (platform, tracking_number, event_index)
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_parcel_events
select platform, tracking_number, event_index, count(*) as copies
from fct_parcel_events
group by all
having count(*) > 1
