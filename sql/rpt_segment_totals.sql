-- rpt_segment_totals: per segment: journeys, persons, converted and open journeys, events and
-- revenue.
select
    s.dimension,
    s.segment,
    count(*) as journeys,
    count(distinct j.person_id) as persons,
    count(case when j.converted then 1 end) as converted,
    count(case when j.status = $journey_open then 1 end) as open,
    sum(j.event_count) as events,
    sum(cast(j.revenue as decimal(38, 6))) as revenue
from journeys as j
inner join rpt_segment_journeys as s on j.journey_id = s.journey_id
group by s.dimension, s.segment
