-- funnel: the stage funnel over all journeys: the `all` rows of funnel_by_segment.
-- reached(s) = journeys whose furthest stage is s or later; step conversion =
-- reached(next) / reached(s); dropped(s) = closed journeys whose furthest stage is s (null for
-- the last stage). Open journeys are never dropped.
select
    stage,
    stage_rank,
    reached,
    reached_next,
    step_conversion,
    dropped,
    open_at_stage,
    journeys,
    as_of
from funnel_by_segment
where dimension = $all_segment
order by stage_rank
