-- monthly spend per platform and currency, in the reporting time zone (etl_settings.report_tz).
-- cancelled orders are excluded; refunds count in the month the (succeeded) refund was created.

-- macro: rpt_spend_monthly_at(tz)
-- this file is the body of that table macro, whose rows bucket months in the time zone tz
-- (select * from rpt_spend_monthly_at('UTC')); the view rpt_spend_monthly is
-- the macro at the warehouse's zone, etl_settings.report_tz (default Asia/Shanghai).
with

report_zone as (
    select tz::varchar as tz  -- the macro's argument
),

orders as (
    select * from fct_orders
    where status is distinct from 'cancelled'
),

refunds as (
    select * from fct_refunds
    where status = 'succeeded'
),

order_spend as (
    select
        date_trunc('month', timezone(z.tz, timezone('UTC', o.created_at)))::date as month,
        o.platform,
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
        coalesce(s.currency, r.currency) as currency,
        coalesce(s.orders, 0) as orders,
        coalesce(s.goods_amount, 0) as goods_amount,
        coalesce(s.shipping_amount, 0) as shipping_amount,
        coalesce(r.refund_amount, 0) as refund_amount,
    from order_spend as s
    full outer join refund_spend as r
        on s.month is not distinct from r.month
        and s.platform = r.platform
        and s.currency is not distinct from r.currency
),

final as (
    select
        month,
        platform,
        currency,
        orders,
        goods_amount::decimal(18, 2) as goods_amount,
        shipping_amount::decimal(18, 2) as shipping_amount,
        refund_amount::decimal(18, 2) as refund_amount,
        (goods_amount + shipping_amount - refund_amount)::decimal(18, 2) as net_spend,
    from joined
)

select * from final
order by month, platform, currency
