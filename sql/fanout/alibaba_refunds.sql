-- keys for POST /alibaba/refund/info (there is no 1688 refund list): every refundId named by a
-- 1688 item, unless we already hold that refund in a final state (refundsuccess, refundclose);
-- an open refund once the API clock ($data_now) moved settings.refetch_after ($refetch_s) since its
-- last fetch. The detail has no currency: the context carries its order's.
with

named as (
    select distinct l.refund_id, l.order_id, l.line_id, o.currency
    from fct_order_lines as l
    left join fct_orders as o on o.platform = '1688' and o.order_id = l.order_id
    where l.platform = '1688' and l.refund_id is not null
),

final as (
    select n.refund_id as key, n.refund_id, n.order_id, n.line_id, n.currency
    from named as n
    left join fct_refunds as r on r.platform = '1688' and r.refund_id = n.refund_id
    where r.refund_id is null
       or ((r.platform_status is null or r.platform_status not in ('refundsuccess', 'refundclose'))
           and ($refetch_s = 0 or coalesce(r.data_clock, '-infinity'::timestamp) <= $data_now - to_seconds($refetch_s)))
)

select * from final
order by key
