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

cell_rows as (
    -- a visit of each cell, and each exit at its cell
    select
        journey_id,
        touchpoint,
        stage,
        1 as visited,
        0 as exited
    from cell_journeys
    union all
    select
        journey_id,
        touchpoint,
        stage,
        0 as visited,
        1 as exited
    from exits
)

-- journeys and exits per segment and cell (an exit's cell is always visited: it is the cell of
-- the journey's last event)
select
    s.dimension,
    s.segment,
    c.touchpoint,
    c.stage,
    sum(c.visited) as journeys,
    sum(c.exited) as exits
from cell_rows as c
inner join rpt_segment_journeys as s on c.journey_id = s.journey_id
group by s.dimension, s.segment, c.touchpoint, c.stage
order by s.dimension, s.segment, c.touchpoint, c.stage
