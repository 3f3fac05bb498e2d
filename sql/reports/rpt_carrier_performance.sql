-- per carrier over all parcels: how many, how many delivered or failed, and transit time from
-- the first event to delivery in hours (p50 / p90).
with

parcels as (
    select
        coalesce(carrier, '(unknown)') as carrier,
        delivered_at,
        last_status,
        date_diff('second', first_event_at, delivered_at) / 3600.0 as transit_h,
    from fct_parcels
),

final as (
    select
        carrier,
        count(*) as parcels,
        count(delivered_at) as delivered,
        count(*) filter (where delivered_at is null and last_status in ('FAILED', 'REJECT')) as failed,
        round(count(delivered_at) / count(*), 4) as delivery_rate,
        round(quantile_cont(transit_h, 0.5), 1) as transit_p50_h,
        round(quantile_cont(transit_h, 0.9), 1) as transit_p90_h,
    from parcels
    group by all
)

select * from final
order by parcels desc, carrier
