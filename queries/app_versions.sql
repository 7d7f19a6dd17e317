-- title: App versions and platforms
-- Events and distinct devices per operating system and app version.
-- chart: bar x=app_version y=events
select coalesce(os_name, 'unknown') as os_name,
       coalesce(app_version, 'unknown') as app_version,
       count(*) as events,
       count(distinct device_id) as devices
from track_events
group by 1, 2
order by 3 desc
