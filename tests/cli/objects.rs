//! Exports in object storage: `tier load NAME --from s3://...` against a real S3-compatible
//! server (moto in server mode on 127.0.0.1), set up with boto3.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

pub const CONTRACT: &str = "name = \"pings\"\nday = \"at\"\n\
    [[column]]\nname = \"sensor\"\ntype = \"text\"\nrequired = true\n\
    [[column]]\nname = \"at\"\ntype = \"timestamp\"\n\
    [[column]]\nname = \"value\"\ntype = \"double\"\n";

/// The secret key tier is given: it must never appear in what tier prints.
pub const SECRET: &str = "sekrit-9f3a-do-not-print";

/// A moto S3 server on a free port of 127.0.0.1; its request log in `log`. Stopped on drop.
pub struct Moto {
    child: Child,
    pub url: String,
    log: PathBuf,
    venv: PathBuf,
}

impl Moto {
    pub fn start(dir: &std::path::Path) -> Moto {
        Moto::start_with(dir, &[])
    }

    /// A server with these environment variables (moto's own settings).
    fn start_with(dir: &std::path::Path, settings: &[(&str, &str)]) -> Moto {
        let venv = python_venv("requirements-s3.txt");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("moto.log");
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, url, log, venv }
    }

    /// Runs Python with a boto3 client `s3` for this server.
    pub fn python(&self, code: &str) {
        let prelude = format!(
            "import boto3, sys\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n",
            self.url
        );
        let out = Command::new(self.venv.join("bin/python")).args(["-c", &(prelude + code)]).output().unwrap();
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// tier, with the AWS environment pointing at this server.
    fn tier(&self, env: &Env, contracts: &str, args: &[&str]) -> Command {
        let mut all = vec!["--datasets", contracts];
        all.extend(args);
        let mut cmd = env.tier(&all);
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.url);
        cmd
    }

    /// A Python process with a boto3 client ready that deletes `key` when told (a line on
    /// its stdin), so the delete lands within milliseconds, not after Python starts.
    fn deleter(&self, key: &str) -> Child {
        let code = format!(
            "import boto3, sys\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n\
             s3.list_buckets()\nprint('ready', flush=True)\nsys.stdin.readline()\ns3.delete_object(Bucket='lake', Key='{key}')\nprint('deleted', flush=True)",
            self.url
        );
        let mut child =
            Command::new(self.venv.join("bin/python")).args(["-c", &code]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        child
    }

    /// GET requests for objects (not listings) the server has answered so far.
    pub fn object_gets(&self) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter(|l| l.contains("\"GET /") && !l.contains("?")).count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(name: &str) -> (Env, String, Moto) {
    let env = Env::new(name);
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    env.write("contracts/pings.toml", CONTRACT);
    let contracts = env.data().join("contracts").display().to_string();
    let moto = Moto::start(env.data());
    moto.python("s3.create_bucket(Bucket='lake')");
    (env, contracts, moto)
}

/// Writes `n` gzipped NDJSON exports of `rows` records each under `dir`; returns their paths.
pub fn gz_exports(dir: &std::path::Path, n: usize, rows: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|f| {
            let path = dir.join(format!("part-{f:02}.json.gz"));
            let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
            for i in 0..rows {
                writeln!(
                    gz,
                    "{{\"sensor\": \"s{f}\", \"at\": \"2024-05-0{} 10:{:02}:{:02}\", \"value\": {i}.5}}",
                    1 + i % 3,
                    i / 60 % 60,
                    i % 60
                )
                .unwrap();
            }
            gz.finish().unwrap();
            path
        })
        .collect()
}

pub fn upload(moto: &Moto, files: &[PathBuf], prefix: &str) {
    let list: Vec<String> = files.iter().map(|p| format!("'{}'", p.display())).collect();
    moto.python(&format!("import os\nfor p in [{}]:\n    s3.upload_file(p, 'lake', '{prefix}' + os.path.basename(p))", list.join(", ")));
}

#[test]
fn a_prefix_of_objects_loads_exactly_once_and_a_rerun_downloads_nothing() {
    let (env, contracts, moto) = setup("s3_prefix");
    let files = gz_exports(&env.data().join("local"), 20, 500);
    upload(&moto, &files, "raw/dt=2024-05-01/");
    let (code, out, err) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("20 of 20 files loaded"), "{err}");
    assert_eq!(env.count("pings"), 10_000);
    let loads: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(loads[0]["file"].as_str().unwrap().starts_with("s3://lake/raw/dt=2024-05-01/part-"), "{out}");
    // The ledger names each object by URL, with its size, ETag and the checksum of its bytes.
    let ledger = env.query_strings("SELECT file, file_size::text, etag, checksum FROM {s}.tier_loads WHERE status = 'ok' ORDER BY file");
    assert_eq!(ledger.len(), 20);
    let b3 = |p: &PathBuf| blake3::hash(&std::fs::read(p).unwrap()).to_hex().to_string();
    assert_eq!(ledger[0][0].as_deref(), Some("s3://lake/raw/dt=2024-05-01/part-00.json.gz"));
    assert_eq!(ledger[0][1].as_deref(), Some(std::fs::metadata(&files[0]).unwrap().len().to_string().as_str()));
    assert!(ledger[0][2].is_some(), "an ETag");
    assert_eq!(ledger[0][3].as_deref(), Some(b3(&files[0]).as_str()), "the checksum is of the object as stored");

    // Validation of the objects: from the figures their loads recorded (found by URL, ETag
    // and size: nothing downloaded), or read again.
    let gets = moto.object_gets();
    let (code, out, err) = run(moto.tier(&env, &contracts, &["validate", "pings", "--from", "s3://lake/raw/"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("figures as load"), "{err}");
    assert_eq!(moto.object_gets(), gets, "validate downloaded objects whose figures it had");
    let (code, out, err) = run(moto.tier(&env, &contracts, &["validate", "pings", "--from", "s3://lake/raw/", "--reread"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(moto.object_gets(), gets + 20, "--reread reads every object");

    // Credentials from a named profile in the AWS CLI's files, as the CLI reads them (with no
    // keys at all, object_store would ask the instance metadata service, and fail here).
    let profile = env.write(
        "aws-credentials",
        format!("[default]\naws_access_key_id = nope\n[tier-test]\naws_access_key_id = test\naws_secret_access_key = {SECRET}\n"),
    );
    let mut cmd = moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/", "--list"]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "tier-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", &profile);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 20, "{out}");

    // A prefix written without its slash is the same prefix.
    let (code, out, _) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/dt=2024-05-01", "--list"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 20, "{out}");

    // A re-run skips every object by ETag and size, without a single download.
    let gets = moto.object_gets();
    assert!(gets >= 20, "{gets} object GETs logged for 20 loads");
    let (code, _, err) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 of 20 files loaded, 20 already loaded (skipped)"), "{err}");
    assert_eq!(moto.object_gets(), gets, "the re-run downloaded objects");
    assert_eq!(env.count("pings"), 10_000);

    // The same bytes under another name are refused once read, as a local file would be.
    moto.python("s3.copy_object(Bucket='lake', Key='copy/part-00.json.gz', CopySource={'Bucket': 'lake', 'Key': 'raw/dt=2024-05-01/part-00.json.gz'})");
    let (code, _, err) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/copy/part-00.json.gz"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already loaded"), "{err}");
    assert_eq!(env.count("pings"), 10_000);
}

#[test]
fn globs_zstd_and_a_vanished_object() {
    let (env, contracts, moto) = setup("s3_glob");
    let files = gz_exports(&env.data().join("local"), 6, 20_000);
    upload(&moto, &files, "raw/");
    // zstd objects stream too.
    let zst = env.data().join("local/extra.json.zst");
    let plain = std::fs::read(env.data().join("local/part-00.json.gz")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&plain[..]), &mut text).unwrap();
    std::fs::write(&zst, zstd::encode_all(text.replace("\"s0\"", "\"z0\"").as_bytes(), 3).unwrap()).unwrap();
    upload(&moto, &[zst], "zst/");
    let (code, _, err) =
        run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/part-0[0-2]*.json.gz", "--from", "s3://lake/zst/"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 of 4 files loaded"), "{err}");
    assert_eq!(env.count("pings"), 80_000);

    // An object that vanishes after the listing fails alone, named by its URL; the others load.
    let mut deleter = moto.deleter("raw/part-05.json.gz");
    let child = moto
        .tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Once the listing is done (the first object is being read), the last one goes.
    let before = moto.object_gets();
    while moto.object_gets() == before {
        assert!(Instant::now() < deadline, "the load never started reading");
        std::thread::sleep(Duration::from_millis(2));
    }
    writeln!(deleter.stdin.as_mut().unwrap()).unwrap();
    assert!(deleter.wait().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("s3://lake/raw/part-05.json.gz: no such object"), "{err}");
    assert!(err.contains("2 of 6 files loaded, 3 already loaded (skipped)"), "{err}");
    assert_eq!(env.count("pings"), 120_000);
    // Credentials never appear in what tier says.
    assert!(!err.contains(SECRET), "{err}");
}

#[test]
fn a_load_killed_midway_then_run_again_loads_each_object_once() {
    let (env, contracts, moto) = setup("s3_kill");
    let files = gz_exports(&env.data().join("local"), 20, 20_000);
    upload(&moto, &files, "raw/");
    let mut child = moto
        .tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = env.query_strings("SELECT count(*)::text FROM pg_tables WHERE schemaname = '{s}' AND tablename = 'tier_loads'");
        let loaded = if done[0][0].as_deref() == Some("1") {
            env.query_strings("SELECT count(*)::text FROM {s}.tier_loads WHERE status = 'ok'")[0][0]
                .clone()
                .unwrap()
                .parse::<i32>()
                .unwrap()
        } else {
            0
        };
        if loaded >= 5 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the load ended before it could be killed");
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, _, err) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("pings"), 400_000, "every object exactly once");
    let per_file = env.query_strings("SELECT count(*)::text FROM {s}.tier_loads WHERE status = 'ok' GROUP BY file HAVING count(*) > 1");
    assert!(per_file.is_empty(), "an object loaded twice: {per_file:?}");
    let files = env.query_strings("SELECT count(DISTINCT file)::text FROM {s}.tier_loads WHERE status = 'ok'");
    assert_eq!(files[0][0].as_deref(), Some("20"));
}

#[test]
fn a_big_object_streams_in_flat_memory() {
    let (env, contracts, moto) = setup("s3_stream");
    // About 120 MB uncompressed in one object: held whole, it alone would outgrow the load.
    let files = gz_exports(&env.data().join("local"), 1, 1_600_000);
    let local = env.data().join("local/part-00.json.gz");
    upload(&moto, &files, "big/");
    let (code, err, from_file) = run_peak_rss(moto.tier(&env, &contracts, &["-q", "load", "pings", "--from", local.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let (code, err, from_object) =
        run_peak_rss(moto.tier(&env, &contracts, &["-q", "load", "pings", "--from", "s3://lake/big/part-00.json.gz", "--force"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("pings"), 3_200_000);
    assert!(
        (from_object as f64) < from_file as f64 * 1.15 + 20_000.0,
        "peak RSS {} MB from the object, {} MB from the same file on disk",
        from_object / 1024,
        from_file / 1024
    );
}

/// Rows per day of `pings` in PostgreSQL.
fn pg_days(env: &Env) -> Vec<(String, i64)> {
    let sql =
        format!("SELECT to_char((at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), count(*) FROM {}.pings GROUP BY 1 ORDER BY 1", env.schema);
    client().query(&sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Rows per day of the lake's `pings`, read by pyarrow (an independent reader) from the files
/// the commit log names, with Hive partitioning.
fn pyarrow_days(moto: &Moto, dir: &std::path::Path) -> Vec<(String, i64)> {
    let out = dir.join("pyarrow-days.txt");
    moto.python(&format!(
        "import json\nimport pyarrow.dataset as ds, pyarrow.fs as fs, pyarrow.compute as pc\n\
         keys = sorted(o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='warehouse/_tier_log/pings/').get('Contents', []))\n\
         records = [json.loads(s3.get_object(Bucket='lake', Key=k)['Body'].read()) for k in keys]\n\
         start = max([i for i, r in enumerate(records) if r['mode'] == 'replace'] or [0])\n\
         files = ['lake/warehouse/' + f for r in records[start:] for f in r['files']]\n\
         s3fs = fs.S3FileSystem(endpoint_override='{}', scheme='http', access_key='test', secret_key='test', region='us-east-1')\n\
         t = ds.dataset(files, filesystem=s3fs, format='parquet', partitioning='hive', partition_base_dir='lake/warehouse/pings').to_table()\n\
         counts = t.group_by('date').aggregate([('date', 'count')]).to_pylist()\n\
         open('{}', 'w').write('\\n'.join(f\"{{c['date']}},{{c['date_count']}}\" for c in sorted(counts, key=lambda c: str(c['date']))))",
        moto.url,
        out.display()
    ));
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| {
            let (d, n) = l.split_once(',').unwrap();
            (d.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_lake_in_object_storage_follows_the_database_and_other_readers_agree() {
    let (env, contracts, moto) = setup("s3_lake");
    let files = gz_exports(&env.data().join("local"), 4, 3_000);
    let lake = "s3://lake/warehouse";
    let load = |file: &std::path::Path, mode: &str| {
        run(moto.tier(
            &env,
            &contracts,
            &["load", "pings", "--from", file.to_str().unwrap(), "--mode", mode, "--lake", lake, "--lake-format", "hive"],
        ))
    };
    for f in &files[..2] {
        let (code, _, err) = load(f, "append");
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(pyarrow_days(&moto, env.data()), pg_days(&env));
    // tier's own reader, through the log.
    let q = env.write("days.sql", "select cast(date as varchar) as day, count(*) as n from pings group by date order by day");
    let lake_days = || {
        let (code, out, err) = run(moto.tier(&env, &contracts, &["query", "--lake", lake, q.to_str().unwrap(), "--format", "csv"]));
        assert_eq!(code, 0, "{err}");
        out.lines().skip(1).map(|l| l.split_once(',').map(|(d, n)| (d.to_string(), n.parse::<i64>().unwrap())).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(lake_days(), pg_days(&env));
    // A replace: the lake is the new load only; the old files are gone.
    let (code, _, err) = load(&files[2], "replace");
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("pings"), 3_000);
    assert_eq!(pyarrow_days(&moto, env.data()), pg_days(&env));
    assert_eq!(lake_days(), pg_days(&env));
    // A failed load adds nothing to the lake: no commit record, no files.
    let bad = env.write("bad.json", "{\"at\": 1}\n{\"at\": 2}\n");
    let (code, _, _) =
        run(moto.tier(&env, &contracts, &["load", "pings", "--from", bad.to_str().unwrap(), "--lake", lake, "--lake-format", "hive"]));
    assert_eq!(code, 3);
    assert_eq!(lake_days(), pg_days(&env));
    let keys = |prefix: &str| {
        let out = env.data().join("keys.txt");
        moto.python(&format!(
            "open('{}', 'w').write('\\n'.join(o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='{prefix}').get('Contents', [])))",
            out.display()
        ));
        std::fs::read_to_string(out).unwrap().lines().map(str::to_string).collect::<Vec<String>>()
    };
    assert_eq!(keys("warehouse/_tier_log/pings/").len(), 3, "one commit record per load that committed");
    assert!(keys("warehouse/pings/").iter().all(|k| k.ends_with("part-3.parquet")), "{:?}", keys("warehouse/pings/"));
}

#[test]
fn a_denied_object_fails_alone_and_names_its_url() {
    let env = Env::new("s3_denied");
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    env.write("contracts/pings.toml", CONTRACT);
    let contracts = env.data().join("contracts").display().to_string();
    // moto checking IAM after its first four requests (which make an administrator).
    let moto = Moto::start_with(env.data(), &[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]);
    let keys = env.data().join("keys.txt");
    let setup = format!(
        "import boto3, json\n\
         kw = dict(endpoint_url='{url}', region_name='us-east-1')\n\
         iam = boto3.client('iam', aws_access_key_id='x', aws_secret_access_key='x', **kw)\n\
         iam.create_user(UserName='admin')\n\
         iam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}}]}}))\n\
         k = iam.create_access_key(UserName='admin')['AccessKey']\n\
         admin = dict(aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey'], **kw)\n\
         s3 = boto3.client('s3', **admin)\n\
         s3.create_bucket(Bucket='lake')\n\
         for name in ['a', 'b', 'c']:\n\
         \x20   s3.put_object(Bucket='lake', Key=f'raw/{{name}}.json', Body=('{{\"sensor\": \"%s\", \"at\": \"2024-05-01 10:00:00\", \"value\": 1}}\\n' % name).encode())\n\
         iam = boto3.client('iam', **admin)\n\
         iam.create_user(UserName='loader')\n\
         iam.put_user_policy(UserName='loader', PolicyName='p', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [\n\
         \x20   {{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}},\n\
         \x20   {{'Effect': 'Deny', 'Action': 's3:GetObject', 'Resource': 'arn:aws:s3:::lake/raw/b.json'}}]}}))\n\
         lk = iam.create_access_key(UserName='loader')['AccessKey']\n\
         open('{keys}', 'w').write(lk['AccessKeyId'] + ' ' + lk['SecretAccessKey'])",
        url = moto.url,
        keys = keys.display()
    );
    let out = Command::new(moto.venv.join("bin/python")).args(["-c", &setup]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&keys).unwrap();
    let (id, secret) = text.split_once(' ').unwrap();
    let mut cmd = env.tier(&["--datasets", &contracts, "load", "pings", "--from", "s3://lake/raw/"]);
    cmd.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret).env("AWS_REGION", "us-east-1").env("AWS_ENDPOINT_URL", &moto.url);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("s3://lake/raw/b.json: access denied"), "{err}");
    assert!(err.contains("2 of 3 files loaded"), "{err}");
    assert!(!err.contains(secret), "the secret key was printed");
    assert_eq!(env.count("pings"), 2);
    let failed = env.query_strings("SELECT file FROM {s}.tier_loads WHERE status = 'failed'");
    assert_eq!(failed, vec![vec![Some("s3://lake/raw/b.json".to_string())]]);
}

#[test]
fn a_lake_commit_record_cannot_write_outside_its_directory() {
    let (env, contracts, moto) = setup("s3_record_paths");
    let outside = env.data().join("outside.parquet");
    // A record naming an absolute path and one climbing out of the table's directory.
    let record = serde_json::json!({
        "load": "1",
        "mode": "append",
        "files": [outside.to_str().unwrap(), "pings/../../escaped.parquet"],
    });
    moto.python(&format!(
        "s3.put_object(Bucket='lake', Key='warehouse/_tier_log/pings/00000000000000000001.json', Body={:?}.encode())\n\
         s3.put_object(Bucket='lake', Key='warehouse/pings/date=2024-05-01/part-1.parquet', Body=b'PAR1')",
        record.to_string()
    ));
    let q = env.write("q.sql", "select count(*) as n from pings");
    let cwd = env.data().join("cwd/a/b");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = moto.tier(&env, &contracts, &["query", "--lake", "s3://lake/warehouse", q.to_str().unwrap()]);
    cmd.current_dir(&cwd);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a file tier writes"), "{err}");
    assert!(!outside.exists(), "the record's absolute path was written");
    let escaped: Vec<_> = walk(env.data()).into_iter().filter(|p| p.ends_with("escaped.parquet")).collect();
    assert!(escaped.is_empty(), "{escaped:?}");
}

/// Every file under a directory.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_badly_named_object_fails_alone() {
    let (env, contracts, moto) = setup("s3_bad_keys");
    let body = |name: &str| format!("{{\\\"sensor\\\": \\\"{name}\\\", \\\"at\\\": \\\"2024-05-01 10:00:00\\\", \\\"value\\\": 1}}\\n");
    moto.python(&format!(
        "for k, b in [('raw/a.json', \"{}\"), ('raw/x//y.json', \"{}\"), ('raw/b.json', \"{}\"), ('raw/c.json', \"{}\")]:\n\
         \x20   s3.put_object(Bucket='lake', Key=k, Body=b.encode())\n\
         keys = [o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='raw/')['Contents']]\n\
         assert 'raw/x//y.json' in keys, keys",
        body("a"),
        body("y"),
        body("b"),
        body("c")
    ));
    let (code, _, err) = run(moto.tier(&env, &contracts, &["load", "pings", "--from", "s3://lake/raw/"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("s3://lake/raw/x//y.json"), "the object is named: {err}");
    assert!(err.contains("3 of 4 files loaded"), "{err}");
    let sensors = env.query_strings("SELECT sensor FROM {s}.pings ORDER BY 1");
    assert_eq!(sensors, vec![vec![Some("a".to_string())], vec![Some("b".to_string())], vec![Some("c".to_string())]]);
}

/// Waits until the ledger has `n` loads that committed.
fn wait_for_loads(env: &Env, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sql = format!("SELECT count(*) FROM {}.tier_loads WHERE status = 'ok'", env.schema);
        let done = client().query_opt(&sql, &[]).ok().flatten().map_or(0, |r| r.get::<_, i64>(0));
        if done >= n {
            assert_eq!(done, n, "more loads than objects");
            return;
        }
        assert!(Instant::now() < deadline, "{done} of {n} objects loaded after 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_followed_prefix_loads_each_new_object_once_across_a_kill_and_stops_on_sigterm() {
    let (env, contracts, moto) = setup("s3_follow");
    let follower = || {
        let args = ["load", "pings", "--from", "s3://lake/raw/", "--follow", "--every", "0.3", "--json"];
        let mut cmd = moto.tier(&env, &contracts, &args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    // Following before anything has landed.
    let mut first = follower();
    std::thread::sleep(Duration::from_secs(1));
    assert!(first.try_wait().unwrap().is_none(), "a follower of an empty prefix stopped");
    let mut rows = 0;
    for (round, (prefix, n, per)) in [("raw/a-", 3, 200), ("raw/b-", 3, 201)].into_iter().enumerate() {
        upload(&moto, &gz_exports(&env.data().join(format!("r{round}")), n, per), prefix);
        rows += n * per;
    }
    wait_for_loads(&env, 6);
    // Killed, objects land meanwhile, then a new follower: each loaded once.
    first.kill().unwrap();
    first.wait().unwrap();
    upload(&moto, &gz_exports(&env.data().join("r2"), 2, 202), "raw/c-");
    rows += 2 * 202;
    let mut second = follower();
    wait_for_loads(&env, 8);
    let killed = Command::new("kill").args(["-TERM", &second.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the follower did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.count("pings") as usize, rows);
    let once = env.query_strings("SELECT count(DISTINCT file)::text, count(*)::text FROM {s}.tier_loads WHERE status = 'ok'");
    assert_eq!(once[0], [Some("8".to_string()), Some("8".to_string())]);
}

#[test]
fn a_followed_directory_loads_files_as_they_land() {
    let env = Env::new("dir_follow");
    let contracts = contract(&env, "pings", CONTRACT);
    let landing = env.data().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let args =
        ["--datasets", contracts.to_str().unwrap(), "load", "pings", "--from", landing.to_str().unwrap(), "--follow", "--every", "0.2"];
    let mut cmd = env.tier(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut follower = cmd.spawn().unwrap();
    // Written elsewhere and moved in whole, as a landing directory should be filled.
    let staged = gz_exports(&env.data().join("staging"), 4, 50);
    for (i, file) in staged.iter().enumerate() {
        std::fs::rename(file, landing.join(file.file_name().unwrap())).unwrap();
        wait_for_loads(&env, i as i64 + 1);
    }
    Command::new("kill").args(["-TERM", &follower.id().to_string()]).status().unwrap();
    let status = follower.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(env.count("pings"), 4 * 50);
    // The mode that replaces is refused for a follower.
    let mut args = args.to_vec();
    args.extend(["--mode", "replace"]);
    let (code, _, err) = run(env.tier(&args));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--follow"), "{err}");
}
