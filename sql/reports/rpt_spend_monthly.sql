-- monthly spend per platform and currency, in the reporting time zone (etl_settings.report_tz).
-- cancelled orders are excluded; refunds count in the month the (succeeded) refund was created.
-- the sum over sales channels of rpt_spend_by_channel_monthly (one computation for both).

-- macro: rpt_spend_monthly_at(tz)
-- this file is the body of that table macro, whose rows bucket months in the time zone tz
-- (select * from rpt_spend_monthly_at('UTC')); the view rpt_spend_monthly is
-- the macro at the warehouse's zone, etl_settings.report_tz (default Asia/Shanghai).
with

by_channel as (
    select * from rpt_spend_by_channel_monthly_at(tz)  -- the macro's argument
),

final as (
    select
        month,
        platform,
        currency,
        sum(orders)::bigint as orders,
        sum(goods_amount)::decimal(18, 2) as goods_amount,
        sum(shipping_amount)::decimal(18, 2) as shipping_amount,
        sum(refund_amount)::decimal(18, 2) as refund_amount,
        sum(net_spend)::decimal(18, 2) as net_spend,
    from by_channel
    group by all
)

select * from final
order by month, platform, currency
