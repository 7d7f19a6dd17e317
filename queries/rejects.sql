-- title: Rejected rows per reason and day
-- What the data-quality rules quarantined, per table, reason and the UTC day of the load
-- that met them (rejects have no trustworthy timestamp of their own).
-- chart: bar x=reason y=rejected series=table_name
select r.table_name,
       r.reason,
       to_char(l.started_at at time zone 'UTC', 'YYYY-MM-DD') as load_day,
       count(*) as rejected
from (
    select 'track_events' as table_name, load_id, reason from track_events_rejects
    union all
    select 'weather', load_id, reason from weather_rejects
) r
left join tier_loads l on l.id = r.load_id
group by 1, 2, 3
order by 1, 4 desc
