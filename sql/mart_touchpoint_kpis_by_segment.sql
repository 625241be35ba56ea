-- touchpoint_kpis_by_segment: per segment (dimension `all` is everyone) and touchpoint:
-- volume, conversion, exits (exit_rate = exits / journeys that touched it), abandonment, and
-- survey scores of the answers rating it (see survey_answers). NPS = 100 * (answers 9-10 -
-- answers 0-6) / answers; CSAT = 100 * answers 4-5 / answers; CES = mean answer. Counts and sums
-- are kept so BI tools can re-aggregate.
with channel_counts as (
    -- a touchpoint's channel is its most frequent one (ties: the smallest name)
    select
        touchpoint,
        channel,
        row_number() over (
            partition by touchpoint order by count(*) desc, channel
        ) as channel_rank
    from events
    group by touchpoint, channel
),

touch as (
    -- volume, conversion and exits per segment and touchpoint
    select
        s.dimension,
        s.segment,
        t.touchpoint,
        cast(sum(t.events) as bigint) as events,
        count(distinct t.person_id) as persons,
        count(*) as journeys,
        count(case when t.converted then 1 end) as converted_journeys,
        count(case when t.is_exit then 1 end) as exits
    from int_journey_touchpoints as t
    inner join int_journey_segments_all as s on t.journey_id = s.journey_id
    group by s.dimension, s.segment, t.touchpoint
),

abandons as (
    select
        s.dimension,
        s.segment,
        a.touchpoint,
        count(case when a.status = $attempt_abandoned then 1 end) as abandoned_attempts
    from abandonment as a
    inner join int_journey_segments_all as s on a.journey_id = s.journey_id
    group by s.dimension, s.segment, a.touchpoint
),

scores as (
    select
        s.dimension,
        s.segment,
        a.touchpoint,
        count(a.nps_score) as nps_responses,
        count(case when a.nps_score >= $nps_promoter_min then 1 end) as nps_promoters,
        count(
            case
                when a.nps_score > $nps_detractor_max and a.nps_score < $nps_promoter_min then 1
            end
        ) as nps_passives,
        count(case when a.nps_score <= $nps_detractor_max then 1 end) as nps_detractors,
        count(a.csat_score) as csat_responses,
        count(case when a.csat_score >= $csat_satisfied_min then 1 end) as csat_satisfied,
        count(a.ces_score) as ces_responses,
        cast(coalesce(sum(a.ces_score), 0) as bigint) as ces_sum
    from survey_answers as a
    inner join int_journey_segments_all as s on a.journey_id = s.journey_id
    group by s.dimension, s.segment, a.touchpoint
),

keys as (
    select
        dimension,
        segment,
        touchpoint
    from touch
    union
    select
        dimension,
        segment,
        touchpoint
    from scores
),

combined as (
    select
        k.dimension,
        k.segment,
        k.touchpoint,
        cc.channel,
        coalesce(t.events, 0) as events,
        coalesce(t.persons, 0) as persons,
        coalesce(t.journeys, 0) as journeys,
        coalesce(t.converted_journeys, 0) as converted_journeys,
        coalesce(t.exits, 0) as exits,
        coalesce(ab.abandoned_attempts, 0) as abandoned_attempts,
        coalesce(sc.nps_responses, 0) as nps_responses,
        coalesce(sc.nps_promoters, 0) as nps_promoters,
        coalesce(sc.nps_passives, 0) as nps_passives,
        coalesce(sc.nps_detractors, 0) as nps_detractors,
        coalesce(sc.csat_responses, 0) as csat_responses,
        coalesce(sc.csat_satisfied, 0) as csat_satisfied,
        coalesce(sc.ces_responses, 0) as ces_responses,
        coalesce(sc.ces_sum, 0) as ces_sum
    from keys as k
    left join channel_counts as cc
        on k.touchpoint = cc.touchpoint and cc.channel_rank = 1
    left join touch as t
        on k.dimension = t.dimension and k.segment = t.segment and k.touchpoint = t.touchpoint
    left join abandons as ab
        on k.dimension = ab.dimension and k.segment = ab.segment and k.touchpoint = ab.touchpoint
    left join scores as sc
        on k.dimension = sc.dimension and k.segment = sc.segment and k.touchpoint = sc.touchpoint
)

select
    dimension,
    segment,
    touchpoint,
    channel,
    events,
    persons,
    journeys,
    converted_journeys,
    case when journeys > 0 then converted_journeys / journeys end as conversion_rate,
    exits,
    case when journeys > 0 then exits / journeys end as exit_rate,
    abandoned_attempts,
    nps_responses,
    nps_promoters,
    nps_passives,
    nps_detractors,
    case
        when nps_responses > 0 then 100.0 * (nps_promoters - nps_detractors) / nps_responses
    end as nps,
    csat_responses,
    csat_satisfied,
    case when csat_responses > 0 then 100.0 * csat_satisfied / csat_responses end as csat,
    ces_responses,
    ces_sum,
    case when ces_responses > 0 then ces_sum / ces_responses end as ces,
    cast($as_of as timestamptz) as as_of
from combined
order by dimension, segment, touchpoint
