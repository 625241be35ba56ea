-- materialized: temp
-- rpt_segment_journeys: the population of every segment the report shows: each journey with its
-- segment in every dimension of the filter ($dims), plus every journey as dimension `all`,
-- segment `all`. A temporary table the other report models read.
select
    journey_id,
    dimension,
    segment
from journey_segments
where list_contains($dims, dimension)
union all
select
    journey_id,
    $all_segment as dimension,
    $all_segment as segment
from journeys
