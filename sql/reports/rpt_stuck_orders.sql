-- what needs chasing, most urgent first, as of the latest moment the warehouse knows about (as_of:
-- the latest order update or tracking event; with a live API, the last load). each open order or
-- parcel is in one stage (its kind) and is stuck once that stage has lasted longer than the stage's
-- expected lead time: awaiting_payment 48 hours from creation, paid_no_parcel_event 72 hours from
-- payment, parcel_no_progress 7 days from the parcel's last event, delivery_failed 24 hours from
-- the failed attempt, refused at once. only stages that began within the recency window
-- (etl_settings.stuck_recent_days: XPORT_STUCK_RECENT_DAYS, default 30 days) are listed, and never
-- a cancelled order's. priority = amount_at_risk × days overdue.
with

as_of as (
    select greatest(
        (select max(updated_at) from fct_orders),
        (select max(event_at) from fct_parcel_events)
    ) as as_of
),

recency as (
    select coalesce(max(value) filter (where key = 'stuck_recent_days'), '30')::integer as recent_days
    from etl_settings
),

-- how long each stage may take before anyone should chase it, in hours
lead_times (kind, lead_time_h) as (
    values
        ('awaiting_payment', 48),  -- created, not paid: 99% of orders are paid within two days
        ('paid_no_parcel_event', 72),  -- paid, no parcel event yet (the warehouse contract's 72 hours)
        ('parcel_no_progress', 168),  -- a parcel in transit with no new event (the contract's 7 days)
        ('delivery_failed', 24),  -- last event FAILED: the carrier re-delivers the next day
        ('refused', 0)  -- last event REJECT: the receiver refused it and it goes back; act at once
),

window_start as (
    select a.as_of, a.as_of - to_days(r.recent_days) as since
    from as_of as a
    cross join recency as r
),

-- the orders whose stage began within the window (materialized: the window's start is known only
-- once as_of is, and filtering first keeps the checks below to these few orders)
recent_orders as materialized (
    select o.platform, o.order_id, o.status, o.currency, o.total_amount, o.created_at, o.paid_at,
    from fct_orders as o
    cross join window_start as w
    where (o.status in ('created', 'awaiting_payment') and o.created_at >= w.since)
       or (o.status in ('paid', 'shipped') and o.paid_at >= w.since)
),

unpaid as (
    select 'awaiting_payment' as kind, platform, order_id, null::varchar as tracking_number,
        created_at as stage_started_at,
    from recent_orders
    where status in ('created', 'awaiting_payment')
),

unshipped as (
    select 'paid_no_parcel_event' as kind, o.platform, o.order_id, null::varchar as tracking_number,
        o.paid_at as stage_started_at,
    from recent_orders as o
    anti join (select platform, order_id from fct_parcels where first_event_at is not null) as p
        on p.platform = o.platform and p.order_id = o.order_id
    where o.status in ('paid', 'shipped')
),

-- parcels not delivered whose last event is within the window
recent_parcels as materialized (
    select p.platform, p.tracking_number, p.order_id, p.purchase_line_id, p.carrier, p.last_event_at, p.last_status,
    from fct_parcels as p
    cross join window_start as w
    where p.delivered_at is null
      and p.last_event_at >= w.since
),

in_transit as (
    select
        case last_status
            when 'FAILED' then 'delivery_failed'
            when 'REJECT' then 'refused'
            else 'parcel_no_progress'
        end as kind,
        platform,
        order_id,
        tracking_number,
        last_event_at as stage_started_at,
    from recent_parcels
),

stuck as materialized (
    select s.*, l.lead_time_h, date_diff('second', s.stage_started_at, w.as_of) / 3600.0 as hours, w.as_of,
    from (select * from unpaid union all select * from unshipped union all select * from in_transit) as s
    inner join lead_times as l on l.kind = s.kind
    cross join window_start as w
    where date_diff('second', s.stage_started_at, w.as_of) > l.lead_time_h * 3600
),

parcels as (
    select p.*
    from recent_parcels as p
    semi join stuck as s on s.platform = p.platform and s.tracking_number = p.tracking_number
),

-- a Taobao parcel carries the order lines of its purchase line: those are at risk
parcel_lines as (
    select p.platform, p.tracking_number, sum(l.amount + coalesce(l.shipping_amount, 0)) as amount,
    from parcels as p
    inner join fct_order_lines as l
        on l.platform = p.platform and l.order_id = p.order_id and l.purchase_line_id = p.purchase_line_id
    group by all
),

-- otherwise the order's amount is shared evenly among its parcels
parcels_per_order as (
    select p.platform, p.order_id, count(*) as parcels,
    from fct_parcels as p
    semi join parcels as s on s.platform = p.platform and s.order_id = p.order_id
    group by all
),

at_risk as (
    select
        s.*,
        p.carrier,
        p.last_event_at,
        p.last_status,
        o.status,
        o.currency,
        o.created_at,
        o.paid_at,
        coalesce(pl.amount, o.total_amount / coalesce(ppo.parcels, 1))::decimal(18, 2) as amount_at_risk,
    from stuck as s
    left join fct_orders as o on o.platform = s.platform and o.order_id = s.order_id
    left join parcels as p on p.platform = s.platform and p.tracking_number = s.tracking_number
    left join parcel_lines as pl on pl.platform = s.platform and pl.tracking_number = s.tracking_number
    left join parcels_per_order as ppo
        on ppo.platform = s.platform and ppo.order_id = s.order_id and s.tracking_number is not null
    where o.status is distinct from 'cancelled'
),

final as (
    select
        round(amount_at_risk::double * (hours - lead_time_h) / 24, 1) as priority,
        kind,
        platform,
        order_id,
        tracking_number,
        carrier,
        status,
        currency,
        amount_at_risk,
        created_at,
        paid_at,
        last_event_at,
        last_status,
        stage_started_at,
        round(hours, 1) as hours_stuck,
        lead_time_h,
        round(hours - lead_time_h, 1) as overdue_h,
        as_of,
    from at_risk
)

select * from final
order by priority desc nulls last, platform, order_id, tracking_number
