-- materialized: view
-- stg_events: ingested events with their anchor identifier, the strongest identifier on the
-- event (customer_id, then anonymous_id, email_hash, phone_hash). The anchor decides the person.
select
    e.*,
    case
        when e.customer_id is not null then 'customer_id'
        when e.anonymous_id is not null then 'anonymous_id'
        when e.email_hash is not null then 'email_hash'
        else 'phone_hash'
    end as anchor_type,
    coalesce(e.customer_id, e.anonymous_id, e.email_hash, e.phone_hash) as anchor_value
from ingested_events as e
