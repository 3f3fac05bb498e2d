-- after-sale per order-creation month (reporting time zone) and platform, over the lines of
-- orders that were not cancelled. a line is refunded when it has a succeeded refund;
-- refund_rate = refunded_lines / lines; after_sale_lines counts any after-sale request.

-- macro: rpt_after_sale_monthly_at(tz)
-- this file is the body of that table macro, whose rows bucket months in the time zone tz
-- (select * from rpt_after_sale_monthly_at('UTC')); the view rpt_after_sale_monthly is
-- the macro at the warehouse's zone, etl_settings.report_tz (default Asia/Shanghai).
with

report_zone as (
    select tz::varchar as tz  -- the macro's argument
),

-- each order's month once (not once per line)
orders as (
    select o.platform, o.order_id, date_trunc('month', timezone(z.tz, timezone('UTC', o.created_at)))::date as month,
    from fct_orders as o
    cross join report_zone as z
    where o.status is distinct from 'cancelled'
),

lines as (
    select l.*, o.month
    from fct_order_lines as l
    inner join orders as o on o.platform = l.platform and o.order_id = l.order_id
),

refunds_by_line as (
    select platform, order_id, line_id, sum(refund_amount) as refund_amount,
    from fct_refunds
    where status = 'succeeded'
    group by all
),

line_facts as (
    select
        l.month,
        l.platform,
        l.refund_status,
        r.refund_amount,
    from lines as l
    left join refunds_by_line as r
        on r.platform = l.platform and r.order_id = l.order_id and r.line_id = l.line_id
),

final as (
    select
        month,
        platform,
        count(*) as lines,
        count(*) filter (where refund_status is not null and refund_status <> 'none') as after_sale_lines,
        count(refund_amount) as refunded_lines,
        round(count(refund_amount) / count(*), 4) as refund_rate,
        coalesce(sum(refund_amount), 0)::decimal(18, 2) as refund_amount,
    from line_facts
    group by all
)

select * from final
order by month, platform
