-- rpt_touchpoint_kpis: the KPIs of every touchpoint in every segment shown (see
-- touchpoint_kpis_by_segment).
select
    dimension,
    segment,
    touchpoint,
    channel,
    journeys,
    converted_journeys,
    conversion_rate,
    exits,
    exit_rate,
    abandoned_attempts,
    nps_responses,
    nps_promoters,
    nps_detractors,
    nps,
    csat_responses,
    csat_satisfied,
    csat,
    ces_responses,
    ces_sum,
    ces
from touchpoint_kpis_by_segment
where dimension = $all_segment or list_contains($dims, dimension)
order by dimension, segment, touchpoint
