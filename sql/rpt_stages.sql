-- rpt_stages: the stages in funnel order.
select
    stage,
    stage_rank
from funnel
order by stage_rank
