-- rpt_segment_answers: survey answers per segment.
select
    s.dimension,
    s.segment,
    count(*) as answers
from survey_answers as a
inner join rpt_segment_journeys as s on a.journey_id = s.journey_id
group by s.dimension, s.segment
