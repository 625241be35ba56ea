-- touchpoint_kpis: per touchpoint over everyone: the `all` rows of touchpoint_kpis_by_segment
-- (volume, conversion, exits, abandonment, NPS, CSAT, CES with their counts and sums).
select
    touchpoint,
    channel,
    events,
    persons,
    journeys,
    converted_journeys,
    conversion_rate,
    exits,
    exit_rate,
    abandoned_attempts,
    nps_responses,
    nps_promoters,
    nps_passives,
    nps_detractors,
    nps,
    csat_responses,
    csat_satisfied,
    csat,
    ces_responses,
    ces_sum,
    ces,
    as_of
from touchpoint_kpis_by_segment
where dimension = $all_segment
order by touchpoint
