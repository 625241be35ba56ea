-- journeys: one row per journey. Open while as_of minus its last event is at most the journey
-- timeout, else closed. The exit touchpoint of a closed, non-converted journey is the
-- touchpoint of its last event.
with journey_stats as (
    select
        journey_id,
        min(person_id) as person_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        count(distinct session_id) as session_count,
        arg_min(channel, event_index) as first_channel,
        arg_min(touchpoint, event_index) as first_touchpoint,
        arg_max(touchpoint, event_index) as last_touchpoint,
        max(stage_rank) as furthest_stage_rank,
        bool_or(is_conversion) as converted,
        min(case when is_conversion then occurred_at end) as converted_at,
        -- decimal sums are exact, so the total does not depend on the order rows are added in
        cast(coalesce(sum(cast(revenue as decimal(38, 6))), 0) as double) as revenue
    from events
    group by journey_id
),

with_status as (
    select
        *,
        case
            when
                date_diff('microsecond', ended_at, cast($as_of as timestamptz))
                <= $journey_timeout_us
                then $journey_open
            else $journey_closed
        end as status
    from journey_stats
)

select
    j.journey_id,
    j.person_id,
    j.started_at,
    j.ended_at,
    j.event_count,
    j.session_count,
    j.first_channel,
    j.first_touchpoint,
    j.last_touchpoint,
    st.stage as furthest_stage,
    j.furthest_stage_rank,
    j.converted,
    j.converted_at,
    j.revenue,
    j.status,
    case
        when j.status = $journey_closed and not j.converted then j.last_touchpoint
    end as exit_touchpoint,
    cast($as_of as timestamptz) as as_of,
    cast(date_trunc('month', j.started_at) as date) as journey_month
from with_status as j
left join cfg_stages as st
    on j.furthest_stage_rank = st.stage_rank
