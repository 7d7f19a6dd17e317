-- title: Do rides drop when it rains?
-- Events joined with the weather of their city and hour; the city of an event is the
-- second part of its timezone (Europe/Oslo -> Oslo). Events per hour with and without rain.
-- chart: bar x=weather y=events_per_hour
with hourly_weather as (
    select city,
           date_trunc('hour', date_time) as hour,
           bool_or(preciptype = 'rain') as raining
    from weather
    group by 1, 2
),
hourly_events as (
    select split_part(timezone, '/', 2) as city,
           date_trunc('hour', original_timestamp) as hour,
           count(*) as events
    from track_events
    where event_name = 'Ride Started'
    group by 1, 2
)
select case when w.raining then 'rain' else 'dry' end as weather,
       count(*) as hours,
       sum(e.events)::bigint as events,
       round(sum(e.events)::numeric / count(*), 2)::float8 as events_per_hour
from hourly_events e
join hourly_weather w using (city, hour)
group by 1
order by 1
