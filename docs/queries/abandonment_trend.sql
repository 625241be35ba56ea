-- Abandonment trend: weekly cart and checkout abandonment rate over everyone.
select
    rule,
    week,
    attempts,
    abandoned,
    completed,
    pending,
    abandonment_rate
from abandonment_by_segment
where dimension = 'all'
order by rule, week
