-- title: Load history
-- Every load recorded in the tier_loads ledger, newest first.
select id, table_name, file, status, mode, records, loaded, rejected,
       round(extract(epoch from finished_at - started_at)::numeric, 2)::float8 as seconds,
       to_char(started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as started_utc,
       left(checksum, 12) as checksum
from tier_loads
order by id desc
