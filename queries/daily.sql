-- title: Events per day
-- Events per UTC day and event name, with distinct users (anonymous_id).
-- chart: line x=day y=events series=event_name
select (original_timestamp at time zone 'UTC')::date::text as day,
       event_name,
       count(*) as events,
       count(distinct anonymous_id) as users
from track_events
group by 1, 2
order by 1, 2
