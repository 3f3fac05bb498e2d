-- every tracking event belongs to a parcel that is in fct_parcels
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
-- a violation lies within one merge key (see load/checks.py): a load re-checks the keys it merged
-- scope: fct_parcel_events
select e.platform, e.tracking_number, e.event_index
from fct_parcel_events as e
anti join fct_parcels as p
    on p.platform = e.platform and p.tracking_number = e.tracking_number
