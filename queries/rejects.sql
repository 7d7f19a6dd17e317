-- title: Rejected rows per reason
-- What the data-quality rules quarantined in the latest loads, per table and reason.
-- chart: bar x=reason y=rejected
select 'track_events' as table_name, reason, count(*) as rejected from track_events_rejects group by 2
union all
select 'weather', reason, count(*) from weather_rejects group by 2
order by 1, 3 desc
