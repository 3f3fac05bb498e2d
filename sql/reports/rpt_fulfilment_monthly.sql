-- fulfilment per order-creation month (reporting time zone) and platform. an order is shipped
-- when its status says so or a parcel exists, delivered when it has parcels and all are
-- delivered (then at the last delivery). lead times in hours: p50 / p90.

-- macro: rpt_fulfilment_monthly_at(tz)
-- this file is the body of that table macro, whose rows bucket months in the time zone tz
-- (select * from rpt_fulfilment_monthly_at('UTC')); the view rpt_fulfilment_monthly is
-- the macro at the warehouse's zone, etl_settings.report_tz (default Asia/Shanghai).
with

report_zone as (
    select tz::varchar as tz  -- the macro's argument
),

-- the month of each distinct minute of the orders' creation, converted once: a zone's offset, and
-- every change of it, falls on a whole minute (for any time since 1972), so an order's month is
-- its minute's. 1.3M orders have a few hundred thousand distinct minutes
minute_months as (
    select m.minute, date_trunc('month', timezone(z.tz, timezone('UTC', m.minute)))::date as month,
    from (select distinct date_trunc('minute', created_at) as minute from fct_orders) as m
    cross join report_zone as z
),

orders as (
    select o.*, mm.month,
    from fct_orders as o
    left join minute_months as mm on mm.minute = date_trunc('minute', o.created_at)
),

parcels_by_order as (
    select
        platform,
        order_id,
        count(*) as parcels,
        count(delivered_at) as delivered_parcels,
        min(first_event_at) as first_event_at,
        max(delivered_at) as last_delivered_at,
    from fct_parcels
    group by all
),

order_facts as (
    select
        o.month,
        o.platform,
        o.status,
        o.created_at,
        o.paid_at,
        p.first_event_at,
        o.status in ('shipped', 'completed') or p.parcels > 0 as is_shipped,
        case when p.parcels > 0 and p.delivered_parcels = p.parcels then p.last_delivered_at end as delivered_at,
    from orders as o
    left join parcels_by_order as p on p.platform = o.platform and p.order_id = o.order_id
),

hours as (
    select
        *,
        date_diff('second', created_at, paid_at) / 3600.0 as created_to_paid_h,
        date_diff('second', paid_at, first_event_at) / 3600.0 as paid_to_first_event_h,
        date_diff('second', first_event_at, delivered_at) / 3600.0 as first_event_to_delivered_h,
    from order_facts
),

quantiles as (
    select
        month,
        platform,
        count(*) as orders,
        count(*) filter (where status = 'cancelled') as cancelled_orders,
        count(paid_at) as paid_orders,
        count(*) filter (where is_shipped) as shipped_orders,
        count(delivered_at) as delivered_orders,
        -- p50 and p90 of a column from one sort of it
        quantile_cont(created_to_paid_h, [0.5, 0.9]) as created_to_paid,
        quantile_cont(paid_to_first_event_h, [0.5, 0.9]) as paid_to_first_event,
        quantile_cont(first_event_to_delivered_h, [0.5, 0.9]) as first_event_to_delivered,
    from hours
    group by all
),

final as (
    select
        month,
        platform,
        orders,
        cancelled_orders,
        paid_orders,
        shipped_orders,
        delivered_orders,
        round(created_to_paid[1], 1) as created_to_paid_p50_h,
        round(created_to_paid[2], 1) as created_to_paid_p90_h,
        round(paid_to_first_event[1], 1) as paid_to_first_event_p50_h,
        round(paid_to_first_event[2], 1) as paid_to_first_event_p90_h,
        round(first_event_to_delivered[1], 1) as first_event_to_delivered_p50_h,
        round(first_event_to_delivered[2], 1) as first_event_to_delivered_p90_h,
    from quantiles
)

select * from final
order by month, platform
