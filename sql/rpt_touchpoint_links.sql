-- rpt_touchpoint_links: forward moves per segment: from the last touchpoint of a stage to the
-- first touchpoint of the later stage the journey moves on to.
select
    s.dimension,
    s.segment,
    t.from_touchpoint,
    t.from_stage,
    t.to_touchpoint,
    t.to_stage,
    count(*) as moves
from stage_transitions as t
inner join rpt_segment_journeys as s on t.journey_id = s.journey_id
where t.from_stage is not null and t.is_forward
group by
    s.dimension, s.segment, t.from_touchpoint, t.from_stage, t.to_touchpoint, t.to_stage
