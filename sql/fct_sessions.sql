-- sessions: one row per session, from its events (first/last by the person's event order).
with session_events as (
    select
        session_id,
        person_id,
        journey_id,
        occurred_at,
        event_index,
        channel,
        touchpoint,
        stage_rank,
        is_conversion,
        revenue
    from events
),

session_stats as (
    select
        session_id,
        min(person_id) as person_id,
        min(journey_id) as journey_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        arg_min(channel, event_index) as first_channel,
        arg_min(touchpoint, event_index) as first_touchpoint,
        arg_max(touchpoint, event_index) as last_touchpoint,
        max(stage_rank) as furthest_stage_rank,
        -- decimal sums are exact, so the total does not depend on the order rows are added in
        cast(coalesce(sum(cast(revenue as decimal(38, 6))), 0) as double) as revenue,
        bool_or(is_conversion) as converted
    from session_events
    group by session_id
)

select
    s.session_id,
    s.person_id,
    s.journey_id,
    s.started_at,
    s.ended_at,
    date_diff('microsecond', s.started_at, s.ended_at) / 1000000.0 as duration_seconds,
    s.event_count,
    s.first_channel,
    s.first_touchpoint,
    s.last_touchpoint,
    st.stage as furthest_stage,
    s.revenue,
    s.converted,
    cast(date_trunc('month', s.started_at) as date) as session_month
from session_stats as s
left join cfg_stages as st
    on s.furthest_stage_rank = st.stage_rank
