-- no fct_parcels row has a null key column
-- a broken key breaks every join and count downstream: it blocks the publish
-- severity: error
select *
from fct_parcels
where platform is null or tracking_number is null
