-- rpt_abandonment_weeks: weekly attempts per segment shown and abandonment rule, in week order:
-- the rows of abandonment_by_segment (as-of is the report's own, shown once).
select * exclude (as_of)
from abandonment_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, rule, week
