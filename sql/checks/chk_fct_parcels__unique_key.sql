-- one row per (platform, tracking_number)
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_parcels
select platform, tracking_number, count(*) as copies
from fct_parcels
group by all
having count(*) > 1
