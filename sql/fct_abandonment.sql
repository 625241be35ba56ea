-- abandonment: a session with a rule's start event is an attempt. It is completed when the
-- person has a completing event in that session or within the window after the session's last
-- start event (inclusive); pending when not completed and the window has not elapsed at as_of;
-- abandoned otherwise. The abandonment touchpoint is the touchpoint of the session's last event.
with attempts as (
    select
        e.session_id,
        r.rule,
        r.complete_event_type,
        r.window_us,
        r.window_seconds,
        min(e.person_id) as person_id,
        min(e.journey_id) as journey_id,
        min(e.occurred_at) as started_at,
        max(e.occurred_at) as last_start_at
    from events as e
    inner join cfg_abandonment_rules as r
        on e.event_type = r.start_event_type
    group by e.session_id, r.rule, r.complete_event_type, r.window_us, r.window_seconds
),

completions as (
    -- the first completing event in the session or in the window after the last start
    select
        a.session_id,
        a.rule,
        min(c.occurred_at) as completed_at
    from attempts as a
    inner join events as c
        on
            a.person_id = c.person_id
            and a.complete_event_type = c.event_type
            and (
                a.session_id = c.session_id
                or (
                    a.last_start_at <= c.occurred_at
                    and date_diff('microsecond', a.last_start_at, c.occurred_at) <= a.window_us
                )
            )
    group by a.session_id, a.rule
),

statuses as (
    select
        a.*,
        c.completed_at,
        case
            when c.completed_at is not null then $attempt_completed
            when
                date_diff('microsecond', a.last_start_at, cast($as_of as timestamptz))
                < a.window_us
                then $attempt_pending
            else $attempt_abandoned
        end as status
    from attempts as a
    left join completions as c
        on
            a.session_id = c.session_id
            and a.rule = c.rule
)

select
    st.session_id,
    st.rule,
    st.person_id,
    st.journey_id,
    st.started_at,
    st.last_start_at,
    st.last_start_at + st.window_seconds * interval '1 second' as deadline,
    st.completed_at,
    st.status,
    s.last_touchpoint as touchpoint,
    case when st.status = $attempt_completed then 1 else 0 end as is_completed,
    case when st.status = $attempt_abandoned then 1 else 0 end as is_abandoned,
    case when st.status = $attempt_pending then 1 else 0 end as is_pending,
    cast($as_of as timestamptz) as as_of,
    cast(date_trunc('month', st.started_at) as date) as attempt_month
from statuses as st
inner join sessions as s
    on st.session_id = s.session_id
