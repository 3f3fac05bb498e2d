-- no fct_parcel_events row has a null key column
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
select *
from fct_parcel_events
where platform is null or tracking_number is null or event_index is null
