-- rpt_touchpoint_kpis: the KPIs of every touchpoint in every segment shown (every column of
-- touchpoint_kpis_by_segment; the report picks the ones it draws).
select *
from touchpoint_kpis_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, touchpoint
