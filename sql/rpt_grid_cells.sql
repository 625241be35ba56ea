-- rpt_grid_cells: the journey map grid's cells per segment: journeys with an event at
-- (touchpoint, stage), and exits there: the closed, non-converted journeys whose last event is
-- there (journeys.exit_touchpoint gives the touchpoint, the last event the stage, null
-- included).
with cell_journeys as (
    -- each journey once per (touchpoint, stage) it has events at
    select distinct
        journey_id,
        touchpoint,
        stage
    from events
),

last_event as (
    -- the stage (null included) of each journey's last event
    select
        journey_id,
        stage
    from events
    qualify row_number() over (partition by journey_id order by event_index desc) = 1
),

exits as (
    -- the exit journeys with their exit touchpoint and the stage of their last event
    select
        j.journey_id,
        j.exit_touchpoint as touchpoint,
        l.stage
    from journeys as j
    inner join last_event as l on j.journey_id = l.journey_id
    where j.exit_touchpoint is not null
),

volume as (
    -- journeys per segment and cell
    select
        s.dimension,
        s.segment,
        c.touchpoint,
        c.stage,
        count(*) as journeys
    from cell_journeys as c
    inner join rpt_segment_journeys as s on c.journey_id = s.journey_id
    group by s.dimension, s.segment, c.touchpoint, c.stage
),

exit_counts as (
    -- exits per segment and cell
    select
        s.dimension,
        s.segment,
        x.touchpoint,
        x.stage,
        count(*) as exits
    from exits as x
    inner join rpt_segment_journeys as s on x.journey_id = s.journey_id
    group by s.dimension, s.segment, x.touchpoint, x.stage
)

select
    v.dimension,
    v.segment,
    v.touchpoint,
    v.stage,
    v.journeys,
    coalesce(x.exits, 0) as exits
from volume as v
left join exit_counts as x
    on
        v.dimension = x.dimension
        and v.segment = x.segment
        and v.touchpoint = x.touchpoint
        and v.stage is not distinct from x.stage
order by v.dimension, v.segment, v.touchpoint, v.stage
