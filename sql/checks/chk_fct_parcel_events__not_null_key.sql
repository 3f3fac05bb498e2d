select *
from fct_parcel_events
where platform is null or tracking_number is null or event_index is null
