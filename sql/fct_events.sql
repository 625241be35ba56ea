-- events: stitched, stage-tagged events cut into sessions and journeys.
-- Within a person events are ordered by (occurred_at, event_id). A session (journey) starts at
-- the person's first event and at every event whose gap to the previous one is strictly greater
-- than the session (journey) timeout. Ids are md5 of the kind and the first event's id.
with gaps as (
    -- gap to the person's previous event
    select
        *,
        date_diff('microsecond', lag(occurred_at) over person_order, occurred_at) as gap_us,
        row_number() over person_order as event_index
    from int_events_staged
    window person_order as (partition by person_id order by occurred_at, event_id)
),

starts as (
    -- events that open a session or a journey carry its id
    select
        *,
        case
            when gap_us is null or gap_us > $session_timeout_us
                then md5('session|' || event_id)
        end as session_start_id,
        case
            when gap_us is null or gap_us > $journey_timeout_us
                then md5('journey|' || event_id)
        end as journey_start_id
    from gaps
)

select
    event_id,
    occurred_at,
    ingested_at,
    source,
    channel,
    touchpoint,
    event_type,
    customer_id,
    anonymous_id,
    account_id,
    email_hash,
    phone_hash,
    revenue,
    nps_score,
    csat_score,
    ces_score,
    rated_touchpoint,
    person_id,
    stage,
    stage_rank,
    -- every later event inherits the id of the last start before it
    last_value(session_start_id ignore nulls) over person_history as session_id,
    last_value(journey_start_id ignore nulls) over person_history as journey_id,
    event_index,
    is_conversion,
    cast(date_trunc('month', occurred_at) as date) as event_month,
    properties
from starts
window person_history as (
    partition by person_id order by occurred_at, event_id
    rows between unbounded preceding and current row
)
