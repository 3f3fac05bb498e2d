-- no source time lies in the future of the machine's clock (one hour of tolerance for clock
-- skew): a future time means a time zone was converted wrongly or the source is corrupt.
-- the normalisers reject a record with a time more than an hour after the moment they read it,
-- and this check runs later against the same tolerance, so a violation here is our bug (or a
-- clock that went back), not the source's: it blocks the publish.
-- severity: error
with

limit_at as (
    select (now() at time zone 'UTC') + interval 1 hour as ceiling
),

times as (
    select 'fct_orders' as tbl, order_id as id, greatest(created_at, paid_at, updated_at) as at from fct_orders
    union all
    select 'fct_refunds', refund_id, greatest(created_at, updated_at) from fct_refunds
    union all
    select 'fct_parcels', tracking_number, greatest(first_event_at, last_event_at, delivered_at) from fct_parcels
    union all
    select 'fct_parcel_events', tracking_number, event_at from fct_parcel_events
),

final as (
    select t.tbl, t.id, t.at
    from times as t
    cross join limit_at as l
    where t.at > l.ceiling
)

select * from final
