-- rpt_abandonment_weeks: weekly attempts per segment shown and abandonment rule (see
-- abandonment_by_segment), in week order.
select
    dimension,
    segment,
    rule,
    week,
    attempts,
    completed,
    abandoned,
    pending,
    abandonment_rate
from abandonment_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, rule, week
