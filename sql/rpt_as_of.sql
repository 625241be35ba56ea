-- rpt_as_of: the time the published tables describe (null for an empty warehouse).
select max(as_of) as as_of
from funnel
