-- rpt_entry_points: per segment and entry point (a journey's first touchpoint): the journeys
-- entering there and how many of them converted.
select
    s.dimension,
    s.segment,
    j.first_touchpoint as touchpoint,
    count(*) as journeys,
    count(case when j.converted then 1 end) as converted
from journeys as j
inner join rpt_segment_journeys as s on j.journey_id = s.journey_id
group by s.dimension, s.segment, j.first_touchpoint
