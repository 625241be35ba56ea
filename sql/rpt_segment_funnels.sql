-- rpt_segment_funnels: the stage funnel of every segment shown, in stage order: the rows of
-- funnel_by_segment (as-of is the report's own, shown once).
select * exclude (as_of)
from funnel_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, stage_rank
