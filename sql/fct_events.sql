-- events: stitched, stage-tagged events cut into sessions and journeys.
-- Within a person events are ordered by (occurred_at, event_id). A session (journey) starts at
-- the person's first event and at every event whose gap to the previous one is strictly greater
-- than the session (journey) timeout. Ids are md5 of the kind and the first event's id.
-- The window work runs on the ordering columns only; the other columns are joined back by
-- event_id (unique), which is much cheaper than carrying them through two sorts.
with gaps as (
    -- gap to the person's previous event
    select
        person_id,
        occurred_at,
        event_id,
        date_diff('microsecond', lag(occurred_at) over person_order, occurred_at) as gap_us,
        row_number() over person_order as event_index
    from int_events_staged
    window person_order as (partition by person_id order by occurred_at, event_id)
),

starts as (
    -- events that open a session or a journey carry its id
    select
        person_id,
        occurred_at,
        event_id,
        event_index,
        case
            when gap_us is null or gap_us > $session_timeout_us
                then md5('session|' || event_id)
        end as session_start_id,
        case
            when gap_us is null or gap_us > $journey_timeout_us
                then md5('journey|' || event_id)
        end as journey_start_id
    from gaps
),

ids as (
    -- every later event inherits the id of the last start before it
    select
        event_id,
        event_index,
        last_value(session_start_id ignore nulls) over person_history as session_id,
        last_value(journey_start_id ignore nulls) over person_history as journey_id
    from starts
    window person_history as (
        partition by person_id order by occurred_at, event_id
        rows between unbounded preceding and current row
    )
)

select
    e.event_id,
    e.occurred_at,
    e.ingested_at,
    e.source,
    e.channel,
    e.touchpoint,
    e.event_type,
    e.customer_id,
    e.anonymous_id,
    e.account_id,
    e.email_hash,
    e.phone_hash,
    e.revenue,
    e.nps_score,
    e.csat_score,
    e.ces_score,
    e.rated_touchpoint,
    e.person_id,
    e.stage,
    e.stage_rank,
    i.session_id,
    i.journey_id,
    i.event_index,
    e.is_conversion,
    cast(date_trunc('month', e.occurred_at) as date) as event_month,
    e.properties
from int_events_staged as e
inner join ids as i on e.event_id = i.event_id
