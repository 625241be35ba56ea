-- abandonment_by_segment: attempts per segment (dimension `all` is everyone), rule and week
-- (Monday, UTC, of the attempt's first start event); rate = abandoned / (abandoned +
-- completed), pending attempts left out of the rate.
with weekly as (
    select
        s.dimension,
        s.segment,
        a.rule,
        cast(date_trunc('week', a.started_at) as date) as week,
        count(*) as attempts,
        count(case when a.status = $attempt_completed then 1 end) as completed,
        count(case when a.status = $attempt_abandoned then 1 end) as abandoned,
        count(case when a.status = $attempt_pending then 1 end) as pending
    from abandonment as a
    inner join int_journey_segments_all as s on a.journey_id = s.journey_id
    group by s.dimension, s.segment, a.rule, cast(date_trunc('week', a.started_at) as date)
)

select
    dimension,
    segment,
    rule,
    week,
    attempts,
    completed,
    abandoned,
    pending,
    case
        when abandoned + completed > 0 then abandoned / (abandoned + completed)
    end as abandonment_rate,
    cast($as_of as timestamptz) as as_of
from weekly
order by dimension, segment, rule, week
