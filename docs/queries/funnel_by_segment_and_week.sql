-- Funnel by segment and week: how many journeys that started in each week reached each stage,
-- per segment of one dimension (here customer_type: new vs returning).
with journey_weeks as (
    select
        j.journey_id,
        j.furthest_stage_rank,
        s.segment,
        cast(date_trunc('week', j.started_at) as date) as week
    from journeys as j
    inner join journey_segments as s
        on j.journey_id = s.journey_id
    where s.dimension = 'customer_type'
)

select
    w.segment,
    w.week,
    f.stage,
    f.stage_rank,
    count(case when w.furthest_stage_rank >= f.stage_rank then 1 end) as reached
from journey_weeks as w
cross join funnel as f
group by w.segment, w.week, f.stage, f.stage_rank
order by w.segment, w.week, f.stage_rank
