-- account_journeys: a B2B account's journey joins the journeys of its people. A person belongs
-- to the account of their first account_id (in event order) and has the role given by the
-- first value of the configured role property, when the source gives one.
with person_accounts as (
    select
        person_id,
        arg_min(account_id, event_index) as account_id
    from events
    where account_id is not null
    group by person_id
),

person_roles as (
    select
        e.person_id,
        arg_min(json_extract_string(e.properties, r.json_path), e.event_index) as role
    from events as e
    cross join cfg_accounts as r
    where json_extract_string(e.properties, r.json_path) is not null
    group by e.person_id
)

select
    pa.account_id,
    j.journey_id,
    j.person_id,
    pr.role,
    j.started_at,
    j.ended_at,
    j.furthest_stage,
    j.converted,
    j.status,
    j.revenue
from journeys as j
inner join person_accounts as pa on j.person_id = pa.person_id
left join person_roles as pr on j.person_id = pr.person_id
order by pa.account_id, j.started_at, j.journey_id
