-- funnel: reached(s) = journeys whose furthest stage is s or later; step conversion =
-- reached(next) / reached(s); dropped(s) = closed journeys whose furthest stage is s (null for
-- the last stage). Open journeys are never dropped.
with journey_counts as (
    -- journeys by furthest stage and status
    select
        furthest_stage_rank,
        count(*) as journeys,
        count(case when status = 'closed' then 1 end) as closed_journeys,
        count(case when status = 'open' then 1 end) as open_journeys
    from journeys
    group by furthest_stage_rank
),

per_stage as (
    select
        s.stage,
        s.stage_rank,
        cast(coalesce(sum(
            case when c.furthest_stage_rank >= s.stage_rank then c.journeys end
        ), 0) as bigint) as reached,
        cast(coalesce(sum(
            case when c.furthest_stage_rank = s.stage_rank then c.closed_journeys end
        ), 0) as bigint) as dropped,
        cast(coalesce(sum(
            case when c.furthest_stage_rank = s.stage_rank then c.open_journeys end
        ), 0) as bigint) as open_at_stage
    from cfg_stages as s
    left join journey_counts as c on true
    group by s.stage, s.stage_rank
),

totals as (
    select cast(coalesce(sum(journeys), 0) as bigint) as journeys
    from journey_counts
),

with_next as (
    select
        *,
        lead(reached) over (order by stage_rank) as reached_next
    from per_stage
)

select
    w.stage,
    w.stage_rank,
    w.reached,
    w.reached_next,
    case when w.reached > 0 then w.reached_next / w.reached end as step_conversion,
    case when w.reached_next is not null then w.dropped end as dropped,
    w.open_at_stage,
    t.journeys,
    cast($as_of as timestamptz) as as_of
from with_next as w
cross join totals as t
order by w.stage_rank
