-- rpt_cell_scores: survey answer counts per segment and rated (touchpoint, stage): NPS answers,
-- promoters (from $nps_promoter_min) and detractors (up to $nps_detractor_max); CSAT answers
-- and satisfied ones (from $csat_satisfied_min); CES answers and their sum.
select
    s.dimension,
    s.segment,
    a.touchpoint,
    a.stage,
    count(a.nps_score) as nps_n,
    count(case when a.nps_score >= $nps_promoter_min then 1 end) as promoters,
    count(case when a.nps_score <= $nps_detractor_max then 1 end) as detractors,
    count(a.csat_score) as csat_n,
    count(case when a.csat_score >= $csat_satisfied_min then 1 end) as satisfied,
    count(a.ces_score) as ces_n,
    coalesce(sum(a.ces_score), 0) as ces_sum
from survey_answers as a
inner join rpt_segment_journeys as s on a.journey_id = s.journey_id
group by s.dimension, s.segment, a.touchpoint, a.stage
