-- monthly spend per platform, sales channel and currency, in the reporting time zone
-- (etl_settings.report_tz). the sales channel is the order's order_source: the marketplace the
-- merchant resells on (Taobao orderSource; '(none)' when the order has none, as every 1688 order).
-- cancelled orders are excluded; refunds count in the month the (succeeded) refund was created,
-- under the channel of the order refunded. summed over channels, the rows are rpt_spend_monthly's.

-- macro: rpt_spend_by_channel_monthly_at(tz)
-- this file is the body of that table macro, whose rows bucket months in the time zone tz
-- (select * from rpt_spend_by_channel_monthly_at('UTC')); the view rpt_spend_by_channel_monthly
-- is the macro at the warehouse's zone, etl_settings.report_tz (default Asia/Shanghai).
with

report_zone as (
    select tz::varchar as tz  -- the macro's argument
),

orders as (
    select * from fct_orders
    where status is distinct from 'cancelled'
),

refunds as (
    select r.*, o.order_source,
    from fct_refunds as r
    left join fct_orders as o on o.platform = r.platform and o.order_id = r.order_id
    where r.status = 'succeeded'
),

order_spend as (
    select
        date_trunc('month', timezone(z.tz, timezone('UTC', o.created_at)))::date as month,
        o.platform,
        coalesce(o.order_source, '(none)') as order_source,
        o.currency,
        count(*) as orders,
        sum(o.goods_amount) as goods_amount,
        sum(o.shipping_amount) as shipping_amount,
    from orders as o
    cross join report_zone as z
    group by all
),

refund_spend as (
    select
        date_trunc('month', timezone(z.tz, timezone('UTC', r.created_at)))::date as month,
        r.platform,
        coalesce(r.order_source, '(none)') as order_source,
        r.currency,
        sum(r.refund_amount) as refund_amount,
    from refunds as r
    cross join report_zone as z
    group by all
),

joined as (
    select
        coalesce(s.month, r.month) as month,
        coalesce(s.platform, r.platform) as platform,
        coalesce(s.order_source, r.order_source) as order_source,
        coalesce(s.currency, r.currency) as currency,
        coalesce(s.orders, 0) as orders,
        coalesce(s.goods_amount, 0) as goods_amount,
        coalesce(s.shipping_amount, 0) as shipping_amount,
        coalesce(r.refund_amount, 0) as refund_amount,
    from order_spend as s
    full outer join refund_spend as r
        on s.month is not distinct from r.month
        and s.platform = r.platform
        and s.order_source = r.order_source
        and s.currency is not distinct from r.currency
),

final as (
    select
        month,
        platform,
        order_source,
        currency,
        orders,
        goods_amount::decimal(18, 2) as goods_amount,
        shipping_amount::decimal(18, 2) as shipping_amount,
        refund_amount::decimal(18, 2) as refund_amount,
        (goods_amount + shipping_amount - refund_amount)::decimal(18, 2) as net_spend,
    from joined
)

select * from final
order by month, platform, order_source, currency
