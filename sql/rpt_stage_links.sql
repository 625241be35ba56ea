-- rpt_stage_links: moves between stages per segment (from null: the journey's first stage).
select
    s.dimension,
    s.segment,
    t.from_stage,
    t.to_stage,
    count(*) as moves
from stage_transitions as t
inner join rpt_segment_journeys as s on t.journey_id = s.journey_id
group by s.dimension, s.segment, t.from_stage, t.to_stage
