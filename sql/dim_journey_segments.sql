-- journey_segments: each journey's segment in every configured dimension. The value is the
-- first non-null value, in event order, of the dimension's event property or column, within
-- the journey (scope journey) or the person's whole history (scope person). A dimension with a
-- `present` label gives that label when a value exists; without a value the segment is the
-- dimension's `missing` label.
with event_values as (
    -- every event's value in every dimension
    select
        e.person_id,
        e.journey_id,
        e.event_index,
        d.dimension,
        d.scope,
        case
            when d.source_kind = 'property'
                then json_extract_string(e.properties, d.json_path)
            when d.column_name = 'channel' then e.channel
            when d.column_name = 'touchpoint' then e.touchpoint
            when d.column_name = 'event_type' then e.event_type
            when d.column_name = 'source' then e.source
            when d.column_name = 'account_id' then e.account_id
        end as segment_value
    from events as e
    cross join cfg_segments as d
),

journey_firsts as (
    select
        journey_id,
        dimension,
        arg_min(segment_value, event_index) as segment_value
    from event_values
    where scope = 'journey' and segment_value is not null
    group by journey_id, dimension
),

person_firsts as (
    select
        person_id,
        dimension,
        arg_min(segment_value, event_index) as segment_value
    from event_values
    where scope = 'person' and segment_value is not null
    group by person_id, dimension
),

resolved as (
    select
        j.journey_id,
        j.person_id,
        d.dimension,
        d.present_label,
        d.missing_label,
        coalesce(jf.segment_value, pf.segment_value) as segment_value
    from journeys as j
    cross join cfg_segments as d
    left join journey_firsts as jf
        on j.journey_id = jf.journey_id and d.dimension = jf.dimension
    left join person_firsts as pf
        on j.person_id = pf.person_id and d.dimension = pf.dimension
)

select
    journey_id,
    dimension,
    person_id,
    case
        when segment_value is null then missing_label
        when present_label is not null then present_label
        else segment_value
    end as segment
from resolved
