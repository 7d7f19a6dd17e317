//! Credentials, names from the command line, and TLS.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

#[test]
fn passwords_never_reach_output_logs_or_the_report() {
    let env = Env::new("secrets");
    // The URL carries the password: a local cluster's own (read from its password file),
    // or, where the server trusts the connection, any secret, which it ignores.
    let (url, secret) = match url_with_password() {
        (url, Some(password), ..) => (url, password),
        (url, None, ..) => (url.replacen("postgres@", "postgres:s3cret-pw@", 1), "s3cret-pw".to_string()),
    };
    assert!(url.contains(&secret) && secret.len() >= 8, "the test server URL has the expected shape: {url}");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    let tier = |args: &[&str]| {
        let mut c = env.tier_plain(args);
        c.args(["--database-url", &url, "--schema", &env.schema]);
        c
    };
    let mut outputs = Vec::new();
    let (code, out, err) = run(tier(&["-vv", "load", "weather"]));
    assert_eq!(code, 0, "{err}");
    outputs.push(out + &err);
    let (code, out, err) = run(tier(&["-v", "validate", "weather"]));
    assert_eq!(code, 0, "{err}");
    outputs.push(out + &err);
    let reports = env.data().join("reports");
    let q = env.data().join("q");
    std::fs::create_dir_all(&q).unwrap();
    std::fs::write(q.join("a.sql"), "select count(*) as n from weather").unwrap();
    let (code, out, err) = run(tier(&["report", "--queries", q.to_str().unwrap(), "--out", reports.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    outputs.push(out + &err);
    outputs.push(std::fs::read_to_string(reports.join("report.html")).unwrap());
    outputs.push(std::fs::read_to_string(reports.join("report.md")).unwrap());
    outputs.push(std::fs::read_to_string(env.data().join("log/tier.log")).unwrap());
    let bad = url.replace("127.0.0.1", "127.0.0.1:1").replacen(":5432", "", 1);
    let mut c = env.tier_plain(&["load", "weather", "--database-url", &bad]);
    c.env_remove("DATABASE_URL");
    let (_, out, err) = run(c);
    outputs.push(out + &err);
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(&secret), "output {i} leaks the password: {o}");
    }
    assert!(outputs[3].contains("postgres:***@"), "the report shows the redacted URL");
}

#[test]
fn schema_names_from_the_command_line_are_validated() {
    let env = Env::new("names");
    for bad in ["x; drop table weather", "a\"b", "1abc", "", &"a".repeat(64)] {
        let mut c = env.tier_plain(&["load", "weather", "--schema", bad]);
        c.args(["--database-url", server_url()]);
        let (code, _, err) = run(c);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("identifier"), "{err}");
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    (crt.display().to_string(), key.display().to_string())
}

#[test]
fn sslmode_is_honoured_on_every_connection_path() {
    let env = Env::new("tls");
    let cluster = LocalCluster::start(&env, "tls");
    let (pg, url) = (cluster.pg.clone(), cluster.url.clone());
    let db = |action: &str| cluster.db(&env, action);
    // TLS on, and plain TCP refused, so a load that works is a load that was encrypted.
    let certs = cluster.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (crt, key) = self_signed(&certs, "server");
    let (other_ca, _) = self_signed(&certs, "other");
    let owner = std::fs::metadata(&pg).unwrap();
    for (from, to) in [(&crt, "server.crt"), (&key, "server.key")] {
        let dest = pg.join(to);
        std::fs::copy(from, &dest).unwrap();
        std::os::unix::fs::chown(&dest, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let mut conf = std::fs::OpenOptions::new().append(true).open(pg.join("postgresql.conf")).unwrap();
    std::io::Write::write_all(&mut conf, b"\nssl = on\n").unwrap();
    std::fs::write(
        pg.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    assert_eq!(db("stop").0, 0);
    assert_eq!(db("start").0, 0);

    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    let tier = |args: &[&str], url: &str| {
        let mut c = env.tier_plain(args);
        c.args(["--database-url", url]).env("TIER_PG_DIR", &pg);
        run(c)
    };
    let (code, _, err) = tier(&["load", "weather"], &url);
    assert_eq!(code, 4, "a plain connection is refused: {err}");

    // The cluster's URL already has a query (its password file).
    let sep = if url.contains('?') { '&' } else { '?' };
    let require = format!("{url}{sep}sslmode=require");
    let (code, _, err) = tier(&["load", "weather"], &require);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = tier(&["validate", "weather"], &require);
    assert_eq!(code, 0, "{out}{err}");

    let full = format!("{url}{sep}sslmode=verify-full&sslrootcert={crt}");
    let q = env.write("ssl.sql", "select ssl::text as ssl from pg_stat_ssl where pid = pg_backend_pid()");
    let (code, out, err) = tier(&["query", q.to_str().unwrap(), "--format", "csv"], &full);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "ssl\ntrue");
    let (code, _, err) = tier(&["load", "weather"], &full);
    assert_eq!(code, 0, "{err}");

    let wrong_ca = format!("{url}{sep}sslmode=verify-full&sslrootcert={other_ca}");
    let (code, _, err) = tier(&["load", "weather"], &wrong_ca);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("certificate"), "{err}");
    let (code, _, err) = tier(&["query", q.to_str().unwrap()], &wrong_ca);
    assert_eq!(code, 4, "{err}");
    assert_eq!(db("stop").0, 0);
}
