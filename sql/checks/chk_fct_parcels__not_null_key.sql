select *
from fct_parcels
where platform is null or tracking_number is null
