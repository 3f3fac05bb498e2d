-- keys for GET /alibaba/order/logistics/trace: shipped 1688 orders, unless the trace was already
-- fetched while the order was confirm_goods/success (1688 steps carry no status, so the order's
-- status at fetch time is what makes a trace final); a trace that can still change only when its
-- API clock ($data_now) moved settings.refetch_after ($refetch_s) since its last fetch, with the
-- same back-off for quiet parcels as sql/fanout/taobao_logistics.sql.
with

shipped_orders as (
    select order_id, platform_status
    from fct_orders
    where platform = '1688'
      and platform_status in ('waitbuyerreceive', 'confirm_goods', 'success')
),

fetched as (
    select order_id, count(*) as parcels,
        count(*) filter (where order_status_at_fetch in ('confirm_goods', 'success')) as final_parcels,
        min(data_clock) as fetched_at,
        max(last_event_at) as last_event_at,
    from fct_parcels
    where platform = '1688'
    group by all
),

final as (
    select s.order_id as key, s.order_id, s.platform_status as order_status
    from shipped_orders as s
    left join fetched as f on f.order_id = s.order_id
    where f.parcels is null
       or (f.final_parcels < f.parcels
           and ($refetch_s = 0 or coalesce(f.fetched_at, '-infinity'::timestamp) <= $data_now - to_seconds($refetch_s * (
               case
                   when f.last_event_at is null or f.last_event_at >= $data_now - interval 3 days then 1
                   when f.last_event_at >= $data_now - interval 30 days then 4
               end))))
)

select * from final
order by key
