-- rpt_segment_sizes: journeys per segment of every dimension, in the order the segment filter
-- lists them: by dimension, then largest segment first (ties by name).
select
    dimension,
    segment,
    count(*) as journeys
from journey_segments
group by dimension, segment
order by dimension asc, journeys desc, segment asc
