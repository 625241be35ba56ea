-- rpt_conversion_rank: the rank of the first stage with a conversion event (null without one).
select min(stage_rank) as conversion_rank
from events
where is_conversion
