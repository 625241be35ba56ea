-- stage_transitions: every change of stage between consecutive staged events of a journey;
-- the journey's first staged event enters its stage from null. Events without a stage are
-- skipped.
with staged as (
    select
        journey_id,
        person_id,
        event_id,
        occurred_at,
        event_index,
        touchpoint,
        stage,
        stage_rank
    from events
    where stage is not null
),

with_previous as (
    -- the previous staged event of the same journey
    select
        *,
        lag(stage) over journey_order as from_stage,
        lag(stage_rank) over journey_order as from_stage_rank,
        lag(touchpoint) over journey_order as from_touchpoint
    from staged
    window journey_order as (partition by journey_id order by event_index)
),

changes as (
    select *
    from with_previous
    where from_stage is null or from_stage <> stage
)

select
    journey_id,
    row_number() over (partition by journey_id order by event_index) as transition_index,
    person_id,
    from_stage,
    stage as to_stage,
    from_touchpoint,
    touchpoint as to_touchpoint,
    event_id,
    occurred_at as transitioned_at,
    coalesce(stage_rank > from_stage_rank, true) as is_forward,
    cast(date_trunc('month', occurred_at) as date) as transition_month
from changes
