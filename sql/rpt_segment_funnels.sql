-- rpt_segment_funnels: the stage funnel of every segment shown (see funnel_by_segment), in
-- stage order.
select
    dimension,
    segment,
    stage,
    stage_rank,
    reached,
    reached_next,
    step_conversion,
    dropped,
    open_at_stage,
    journeys
from funnel_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, stage_rank
