-- Top exit touchpoints: where closed, non-converted journeys end, with how often journeys that
-- touch the touchpoint end there.
select
    touchpoint,
    exits,
    journeys,
    exit_rate
from touchpoint_kpis
where exits > 0
order by exits desc, touchpoint asc
limit 10
