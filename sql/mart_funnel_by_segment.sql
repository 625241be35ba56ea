-- funnel_by_segment: the stage funnel per segment (dimension `all` is the whole population).
-- reached(s) = journeys whose furthest stage is s or later; step conversion =
-- reached(next) / reached(s); dropped(s) = closed journeys whose furthest stage is s (null for
-- the last stage). Open journeys are never dropped.
with journey_counts as (
    -- journeys by segment, furthest stage and status
    select
        s.dimension,
        s.segment,
        j.furthest_stage_rank,
        count(*) as journeys,
        count(case when j.status = $journey_closed then 1 end) as closed_journeys,
        count(case when j.status = $journey_open then 1 end) as open_journeys
    from journeys as j
    inner join int_journey_segments_all as s on j.journey_id = s.journey_id
    group by s.dimension, s.segment, j.furthest_stage_rank
),

segments as (
    select
        dimension,
        segment,
        cast(sum(journeys) as bigint) as journeys
    from journey_counts
    group by dimension, segment
),

per_stage as (
    -- every stage of every segment, reached or not
    select
        g.dimension,
        g.segment,
        g.journeys,
        st.stage,
        st.stage_rank,
        cast(coalesce(sum(
            case when c.furthest_stage_rank >= st.stage_rank then c.journeys end
        ), 0) as bigint) as reached,
        cast(coalesce(sum(
            case when c.furthest_stage_rank = st.stage_rank then c.closed_journeys end
        ), 0) as bigint) as dropped,
        cast(coalesce(sum(
            case when c.furthest_stage_rank = st.stage_rank then c.open_journeys end
        ), 0) as bigint) as open_at_stage
    from segments as g
    cross join cfg_stages as st
    left join journey_counts as c
        on g.dimension = c.dimension and g.segment = c.segment
    group by g.dimension, g.segment, g.journeys, st.stage, st.stage_rank
),

with_next as (
    select
        *,
        lead(reached) over (partition by dimension, segment order by stage_rank) as reached_next
    from per_stage
)

select
    dimension,
    segment,
    stage,
    stage_rank,
    reached,
    reached_next,
    case when reached > 0 then reached_next / reached end as step_conversion,
    case when reached_next is not null then dropped end as dropped,
    open_at_stage,
    journeys,
    cast($as_of as timestamptz) as as_of
from with_next
order by dimension, segment, stage_rank
