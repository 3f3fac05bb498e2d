-- what needs chasing, as of the latest moment the warehouse knows about (as_of: the latest order
-- update or tracking event; with a live API that is the last load): orders paid over 72 hours
-- ago with no parcel event, and parcels with no new event for 7 days that are not delivered.
with

as_of as (
    select greatest(
        (select max(updated_at) from fct_orders),
        (select max(event_at) from fct_parcel_events)
    ) as as_of
),

parcels_by_order as (
    select platform, order_id, min(first_event_at) as first_event_at
    from fct_parcels
    group by all
),

unshipped as (
    select
        'paid_no_parcel_event' as kind,
        o.platform,
        o.order_id,
        null::varchar as tracking_number,
        null::varchar as carrier,
        o.status,
        o.paid_at,
        null::timestamp as last_event_at,
        null::varchar as last_status,
        round(date_diff('second', o.paid_at, a.as_of) / 3600.0, 1) as hours_stuck,
        a.as_of,
    from fct_orders as o
    cross join as_of as a
    left join parcels_by_order as p on p.platform = o.platform and p.order_id = o.order_id
    where o.paid_at is not null
      and o.status in ('paid', 'shipped')
      and p.first_event_at is null
      and o.paid_at < a.as_of - interval 72 hours
),

stalled as (
    select
        'parcel_no_progress' as kind,
        p.platform,
        p.order_id,
        p.tracking_number,
        p.carrier,
        o.status,
        o.paid_at,
        p.last_event_at,
        p.last_status,
        round(date_diff('second', p.last_event_at, a.as_of) / 3600.0, 1) as hours_stuck,
        a.as_of,
    from fct_parcels as p
    cross join as_of as a
    left join fct_orders as o on o.platform = p.platform and o.order_id = p.order_id
    where p.delivered_at is null
      and p.last_event_at < a.as_of - interval 7 days
),

final as (
    select * from unshipped
    union all
    select * from stalled
)

select * from final
order by hours_stuck desc, platform, order_id
