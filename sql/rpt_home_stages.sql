-- rpt_home_stages: each touchpoint's home stage rank: the stage most of its events are in (ties:
-- the earlier stage, and any stage before none). It orders the grid rows and decides which entry
-- points count as pre-conversion.
with per_stage as (
    -- events per touchpoint and stage
    select
        touchpoint,
        stage_rank,
        count(*) as events
    from events
    group by touchpoint, stage_rank
)

select
    touchpoint,
    stage_rank
from per_stage
qualify row_number() over (
    partition by touchpoint order by events desc, stage_rank asc nulls last
) = 1
