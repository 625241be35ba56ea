-- survey_answers: one row per survey answer with the touchpoint it rates: its
-- rated_touchpoint when the source names one, else the most recent non-survey touchpoint
-- strictly earlier in the same journey, else '(unattributed)'. Its stage is the stage of the
-- rated event when attributed to an earlier event, else the touchpoint's most frequent stage.
with surveyed_journeys as (
    -- only journeys with a survey answer need the attribution window
    select distinct journey_id
    from events
    where event_type = $survey_event_type
),

journey_events as (
    -- each event with the latest non-survey event before it in its journey
    select
        e.*,
        last_value(
            case when e.event_type <> $survey_event_type then e.event_index end ignore nulls
        ) over (
            partition by e.journey_id order by e.event_index
            rows between unbounded preceding and 1 preceding
        ) as previous_index
    from events as e
    inner join surveyed_journeys as sj on e.journey_id = sj.journey_id
),

with_previous as (
    -- the touchpoint and stage of that one event
    select
        je.*,
        p.touchpoint as previous_touchpoint,
        p.stage as previous_stage
    from journey_events as je
    left join events as p
        on je.person_id = p.person_id and je.previous_index = p.event_index
),

touchpoint_stages as (
    -- a touchpoint's most frequent stage (ties: the earlier stage)
    select
        touchpoint,
        stage,
        row_number() over (
            partition by touchpoint order by count(*) desc, min(stage_rank)
        ) as stage_order
    from events
    where stage is not null
    group by touchpoint, stage
),

answers as (
    select
        event_id,
        person_id,
        journey_id,
        occurred_at,
        nps_score,
        csat_score,
        ces_score,
        case
            when rated_touchpoint is not null then $attribution_named
            when previous_touchpoint is not null then $attribution_previous
            else $attribution_none
        end as attribution,
        coalesce(rated_touchpoint, previous_touchpoint, $unattributed_touchpoint) as touchpoint,
        case when rated_touchpoint is null then previous_stage end as previous_stage
    from with_previous
    where event_type = $survey_event_type
)

select
    a.event_id,
    a.person_id,
    a.journey_id,
    a.occurred_at,
    a.touchpoint,
    a.attribution,
    coalesce(a.previous_stage, ts.stage) as stage,
    st.stage_rank,
    a.nps_score,
    a.csat_score,
    a.ces_score,
    cast(date_trunc('month', a.occurred_at) as date) as answer_month
from answers as a
left join touchpoint_stages as ts
    on a.touchpoint = ts.touchpoint and ts.stage_order = 1
left join cfg_stages as st
    on coalesce(a.previous_stage, ts.stage) = st.stage
