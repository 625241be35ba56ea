-- int_journey_segments_all: every journey's segments plus the whole population, as dimension
-- `all` with segment `all`, so each breakdown also carries its overall row.
select
    journey_id,
    dimension,
    segment
from journey_segments
union all
select
    journey_id,
    $all_segment as dimension,
    $all_segment as segment
from journeys
