-- Journeys that went web -> call center -> churn: a web event, later a call center event, the
-- journey closed, and the person never came back (no later journey).
with firsts as (
    select
        e.journey_id,
        min(case when e.channel = 'web' then e.event_index end) as first_web
    from events as e
    group by e.journey_id
),

calls_after_web as (
    select distinct e.journey_id
    from events as e
    inner join firsts as f
        on e.journey_id = f.journey_id
    where e.channel = 'call_center' and e.event_index > f.first_web
),

last_journeys as (
    select
        journey_id,
        started_at = max(started_at) over (partition by person_id) as is_last
    from journeys
)

select
    j.journey_id,
    j.person_id,
    j.started_at,
    j.ended_at,
    j.furthest_stage,
    j.converted,
    j.last_touchpoint
from journeys as j
inner join calls_after_web as c
    on j.journey_id = c.journey_id
inner join last_journeys as l
    on j.journey_id = l.journey_id
where j.status = 'closed' and l.is_last
order by j.started_at, j.journey_id
