-- NPS by touchpoint by week: promoters, detractors and NPS of the answers rating each
-- touchpoint, per week of the answer.
select
    touchpoint,
    cast(date_trunc('week', occurred_at) as date) as week,
    count(nps_score) as responses,
    count(case when nps_score >= 9 then 1 end) as promoters,
    count(case when nps_score <= 6 then 1 end) as detractors,
    100.0 * (
        count(case when nps_score >= 9 then 1 end) - count(case when nps_score <= 6 then 1 end)
    ) / count(nps_score) as nps
from survey_answers
where nps_score is not null
group by touchpoint, cast(date_trunc('week', occurred_at) as date)
order by touchpoint, week
