-- keys for GET /v2/taobao/order/logistics/detail/get: shipped Taobao purchase lines (status 11
-- or a logisticNumber, docs/api-contract.md#51-taobao-orders), unless the line is complete: every
-- parcel we hold for it is delivered (a SIGN event is final) and together they carry the line's
-- quantity (a line can ship in several parcels, a later one after an earlier one was delivered;
-- when a parcel's goods quantity is unknown, delivered parcels count as complete). A line that can
-- still change is fetched again once the API clock ($data_now) has moved settings.refetch_after
-- ($refetch_s) since its last fetch, backing off for parcels that went quiet: every interval while
-- the line's last event is under 3 days old, every 4 intervals up to 30 days, then no more (a
-- parcel silent for a month is lost or returned). XPORT_REFETCH_AFTER=0 lifts all of it: every
-- line that can still change is asked on every run. A shipped line with no parcel yet is asked on every run.
with

shipped_lines as (
    select l.order_id, l.purchase_line_id, l.quantity
    from fct_order_lines as l
    where l.platform = 'taobao'
      and l.purchase_line_id is not null
      and (l.line_status = '11' or l.tracking_number is not null)
),

parcels as (
    select
        purchase_line_id,
        count(*) as parcels,
        count(delivered_at) as delivered,
        count(goods_quantity) = count(*) as quantities_known,
        sum(goods_quantity) as goods_quantity,
        min(data_clock) as fetched_at,
        max(last_event_at) as last_event_at,
    from fct_parcels
    where platform = 'taobao'
    group by all
),

final as (
    select s.purchase_line_id as key, s.order_id, s.purchase_line_id
    from shipped_lines as s
    left join parcels as p on p.purchase_line_id = s.purchase_line_id
    where p.parcels is null
       or ((p.delivered < p.parcels
            or (p.quantities_known and s.quantity is not null and p.goods_quantity < s.quantity))
           and ($refetch_s = 0 or coalesce(p.fetched_at, '-infinity'::timestamp) <= $data_now - to_seconds($refetch_s * (
               case
                   when p.last_event_at is null or p.last_event_at >= $data_now - interval 3 days then 1
                   when p.last_event_at >= $data_now - interval 30 days then 4
               end))))
)

select * from final
order by key
