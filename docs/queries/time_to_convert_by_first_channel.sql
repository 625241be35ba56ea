-- Time to convert by first-touch channel: hours from a converted journey's first event to its
-- first conversion, per the channel of its first event.
select
    first_channel,
    count(*) as converted_journeys,
    median(date_diff('microsecond', started_at, converted_at) / 3600000000.0) as median_hours,
    avg(date_diff('microsecond', started_at, converted_at) / 3600000000.0) as mean_hours
from journeys
where converted
group by first_channel
order by median_hours
