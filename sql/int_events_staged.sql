-- materialized: view
-- int_events_staged: events with their person (the person of their anchor identifier) and their
-- stage (the first stage rule matching channel, event_type and touchpoint; a null condition
-- matches anything, a rule with a null stage gives no stage).
with combos as (
    -- rules are matched against the distinct combinations, not against every event
    select distinct
        channel,
        event_type,
        touchpoint
    from stg_events
),

matches as (
    select
        c.channel,
        c.event_type,
        c.touchpoint,
        r.stage,
        row_number() over (
            partition by c.channel, c.event_type, c.touchpoint order by r.rule_index
        ) as match_index
    from combos as c
    inner join cfg_stage_rules as r
        on
            (r.channel is null or c.channel = r.channel)
            and (r.event_type is null or c.event_type = r.event_type)
            and (r.touchpoint is null or c.touchpoint = r.touchpoint)
),

combo_stages as (
    -- first matching rule wins
    select
        channel,
        event_type,
        touchpoint,
        stage
    from matches
    where match_index = 1
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
    m.person_id,
    cs.stage,
    s.stage_rank,
    coalesce(s.is_conversion, false) as is_conversion,
    e.properties
from stg_events as e
inner join identity_map as m
    on
        e.anchor_type = m.identifier_type
        and e.anchor_value = m.identifier_value
left join combo_stages as cs
    on
        e.channel = cs.channel
        and e.event_type = cs.event_type
        and e.touchpoint = cs.touchpoint
left join cfg_stages as s
    on cs.stage = s.stage
