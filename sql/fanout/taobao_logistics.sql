-- keys for GET /v2/taobao/order/logistics/detail/get: shipped Taobao purchase lines (status 11
-- or a logisticNumber, CONTRACT §5.1), unless the line is complete: every parcel we hold for it
-- is delivered (a SIGN event is final) and together they carry the line's quantity (a line can
-- ship in several parcels, a later one after an earlier one was delivered; when a parcel's goods
-- quantity is unknown, delivered parcels count as complete). A line that can still change is
-- fetched again only when its last fetch is older than $refetch_before (the API clock minus
-- settings.refetch_after); a shipped line with no parcel yet, on every run.
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
           and coalesce(p.fetched_at, '-infinity'::timestamp) <= $refetch_before)
)

select * from final
order by key
