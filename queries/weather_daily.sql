-- title: Weather per city and day
-- Minimum and maximum temperature, and the hours with rain, per city and UTC day.
-- chart: line x=day y=max_temperature series=city agg=max
select city,
       (date_time at time zone 'UTC')::date::text as day,
       min(temperature) as min_temperature,
       max(temperature) as max_temperature,
       count(distinct date_trunc('hour', date_time)) filter (where preciptype = 'rain') as rain_hours
from weather
group by 1, 2
order by 2, 1
