-- int_identity_edges: one row per (anchor identifier, identifier) pair seen on an event, with
-- the first event that carried the pair in (occurred_at, event_id) order and how many did,
-- and the identifier type's precedence (cfg_identifier_types, from the vocabulary).
-- The anchor paired with itself is included, so every identifier appears. Stitching applies
-- the links in first-event order, so the earliest link wins when a merge must be refused.
with identifiers as (
    -- every identifier of every event, next to the event's anchor
    select
        event_id,
        occurred_at,
        anchor_type,
        anchor_value,
        'customer_id' as identifier_type,
        customer_id as identifier_value
    from stg_events
    where customer_id is not null
    union all
    select
        event_id,
        occurred_at,
        anchor_type,
        anchor_value,
        'anonymous_id' as identifier_type,
        anonymous_id as identifier_value
    from stg_events
    where anonymous_id is not null
    union all
    select
        event_id,
        occurred_at,
        anchor_type,
        anchor_value,
        'email_hash' as identifier_type,
        email_hash as identifier_value
    from stg_events
    where email_hash is not null
    union all
    select
        event_id,
        occurred_at,
        anchor_type,
        anchor_value,
        'phone_hash' as identifier_type,
        phone_hash as identifier_value
    from stg_events
    where phone_hash is not null
),

firsts as (
    -- per pair: the first event in (occurred_at, event_id) order, and how many carried it
    select
        anchor_type,
        anchor_value,
        identifier_type,
        identifier_value,
        min({ 'at': occurred_at, 'id': event_id }) as first_event,
        count(*) as events
    from identifiers
    group by anchor_type, anchor_value, identifier_type, identifier_value
)

select
    f.anchor_type,
    f.anchor_value,
    f.identifier_type,
    f.identifier_value,
    -- the identifier type's precedence (1 = strongest) orders the links of one event
    t.precedence as priority,
    struct_extract(f.first_event, 'at') as first_at,
    struct_extract(f.first_event, 'id') as first_event_id,
    f.events
from firsts as f
inner join cfg_identifier_types as t on f.identifier_type = t.identifier_type
