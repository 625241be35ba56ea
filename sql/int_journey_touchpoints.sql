-- int_journey_touchpoints: one row per journey and touchpoint it touched, with the events
-- there, whether the journey converted, and whether the journey exited there (closed,
-- non-converted, last event at this touchpoint). KPIs aggregate these rows, not events.
with touches as (
    select
        journey_id,
        touchpoint,
        count(*) as events
    from events
    group by journey_id, touchpoint
)

select
    t.journey_id,
    t.touchpoint,
    j.person_id,
    t.events,
    j.converted,
    coalesce(j.exit_touchpoint = t.touchpoint, false) as is_exit
from touches as t
inner join journeys as j on t.journey_id = j.journey_id
