-- touchpoint_kpis: per touchpoint, volume, conversion, exits (exit_rate = exits / journeys that
-- touched it), abandonment, and survey scores. A survey answer rates its rated_touchpoint, else
-- the person's most recent non-survey touchpoint earlier in the same journey. NPS = 100 *
-- (answers 9-10 - answers 0-6) / answers; CSAT = 100 * answers 4-5 / answers; CES = mean.
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
    -- journeys, persons and events per touchpoint
    select
        e.touchpoint,
        count(*) as events,
        count(distinct e.person_id) as persons,
        count(distinct e.journey_id) as journeys
    from events as e
    group by e.touchpoint
),

journey_touch as (
    select distinct
        e.touchpoint,
        e.journey_id,
        j.converted
    from events as e
    inner join journeys as j on e.journey_id = j.journey_id
),

conversions as (
    select
        touchpoint,
        count(case when converted then 1 end) as converted_journeys
    from journey_touch
    group by touchpoint
),

exits as (
    select
        exit_touchpoint as touchpoint,
        count(*) as exits
    from journeys
    where exit_touchpoint is not null
    group by exit_touchpoint
),

abandons as (
    select
        touchpoint,
        count(case when status = 'abandoned' then 1 end) as abandoned_attempts
    from abandonment
    group by touchpoint
),

surveyed_journeys as (
    -- only journeys with a survey answer need the attribution window
    select distinct journey_id
    from events
    where event_type = $survey_event_type
),

attributed as (
    -- each survey answer with the most recent non-survey touchpoint before it in its journey
    select
        e.event_id,
        e.event_type,
        e.rated_touchpoint,
        e.nps_score,
        e.csat_score,
        e.ces_score,
        last_value(
            case when e.event_type <> $survey_event_type then e.touchpoint end ignore nulls
        ) over (
            partition by e.journey_id order by e.event_index
            rows between unbounded preceding and 1 preceding
        ) as previous_touchpoint
    from events as e
    inner join surveyed_journeys as sj on e.journey_id = sj.journey_id
),

answers as (
    select
        coalesce(rated_touchpoint, previous_touchpoint, '(unattributed)') as touchpoint,
        nps_score,
        csat_score,
        ces_score
    from attributed
    where event_type = $survey_event_type
),

scores as (
    select
        touchpoint,
        count(nps_score) as nps_responses,
        count(case when nps_score >= 9 then 1 end) as nps_promoters,
        count(case when nps_score between 7 and 8 then 1 end) as nps_passives,
        count(case when nps_score <= 6 then 1 end) as nps_detractors,
        count(csat_score) as csat_responses,
        count(case when csat_score >= 4 then 1 end) as csat_satisfied,
        count(ces_score) as ces_responses,
        cast(coalesce(sum(ces_score), 0) as bigint) as ces_sum
    from answers
    group by touchpoint
),

all_touchpoints as (
    select touchpoint from touch
    union
    select touchpoint from scores
),

combined as (
    select
        a.touchpoint,
        cc.channel,
        coalesce(t.events, 0) as events,
        coalesce(t.persons, 0) as persons,
        coalesce(t.journeys, 0) as journeys,
        coalesce(c.converted_journeys, 0) as converted_journeys,
        coalesce(x.exits, 0) as exits,
        coalesce(ab.abandoned_attempts, 0) as abandoned_attempts,
        coalesce(s.nps_responses, 0) as nps_responses,
        coalesce(s.nps_promoters, 0) as nps_promoters,
        coalesce(s.nps_passives, 0) as nps_passives,
        coalesce(s.nps_detractors, 0) as nps_detractors,
        coalesce(s.csat_responses, 0) as csat_responses,
        coalesce(s.csat_satisfied, 0) as csat_satisfied,
        coalesce(s.ces_responses, 0) as ces_responses,
        coalesce(s.ces_sum, 0) as ces_sum
    from all_touchpoints as a
    left join touch as t on a.touchpoint = t.touchpoint
    left join channel_counts as cc on a.touchpoint = cc.touchpoint and cc.channel_rank = 1
    left join conversions as c on a.touchpoint = c.touchpoint
    left join exits as x on a.touchpoint = x.touchpoint
    left join abandons as ab on a.touchpoint = ab.touchpoint
    left join scores as s on a.touchpoint = s.touchpoint
)

select
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
order by touchpoint
