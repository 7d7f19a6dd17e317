//! `tier report`: a self-contained page that a real browser renders, and its Markdown twin.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const QUERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");

fn chromium() -> &'static str {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(c).exists() {
            return c;
        }
    }
    panic!("the report test needs headless Chromium: apt-get install chromium (.ci/run installs it)");
}

fn headless(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn report_renders_in_a_browser_with_charts_and_no_external_requests() {
    let env = Env::new("report");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "3000", "--weather", "600", "--seed", "3", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(env.tier(&["load"]));
    assert_eq!(code, 0, "{err}");
    let out_dir = env.data().join("reports");
    let (code, out, err) = run(env.tier(&["report", "--queries", QUERIES, "--out", out_dir.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let html_path = out_dir.join("report.html");
    assert_eq!(out.trim(), html_path.display().to_string(), "stdout names the report");
    let html = std::fs::read_to_string(&html_path).unwrap();
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();

    // Self-contained: nothing to fetch. (SVG's xmlns is a name, not a request.)
    for needle in ["<link", "<script", "<img", "<iframe", "@import", "url("] {
        assert!(!html.contains(needle), "the page references {needle}");
    }
    for attr in ["src=", "href="] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            assert!(value.starts_with("\"#"), "{attr} points outside the page: {}", &value[..value.len().min(60)]);
        }
    }
    // Every saved query is in both versions, with its SQL.
    for entry in std::fs::read_dir(QUERIES).unwrap() {
        let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let title = tier::sql::header(&sql).title.unwrap();
        assert!(html.contains(&title.replace('\'', "&#x27;")) || html.contains(&title), "{title}");
        assert!(md.contains(&format!("## {title}")), "{title}");
    }
    assert!(html.contains("all checks match") && md.contains("All checks match."));
    let charts = html.matches("<svg").count();
    assert!(charts >= 5, "{charts} charts");

    // A real browser parses it and draws it.
    let dom = headless(&["--dump-dom", &format!("file://{}", html_path.display())]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Events per day") && dom.matches("<svg").count() >= 5, "rendered DOM: {}", &dom[..dom.len().min(500)]);
    assert_eq!(external_requests(&format!("file://{}", html_path.display())), Vec::<String>::new(), "the page fetched something");
    let shot = env.data().join("report.png");
    let o = headless(&["--window-size=1200,1600", &format!("--screenshot={}", shot.display()), &format!("file://{}", html_path.display())]);
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "a blank page is tiny: {} bytes", png.len());
}

#[test]
fn a_failing_query_is_shown_and_fails_the_command() {
    let env = Env::new("report_fail");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let queries = env.data().join("q");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("a.sql"), "-- title: Cities\nselect city from weather").unwrap();
    std::fs::write(queries.join("b.sql"), "-- title: Broken\nselect nope from weather").unwrap();
    let out_dir = env.data().join("out");
    let (code, _, err) = run(env.tier(&["report", "--queries", queries.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("b.sql"), "{err}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("Oslo") && html.contains("nope"), "both sections are there");
    assert!(html.contains("Not run: source files not found"), "validation says why it did not run");
}

/// Every http(s) request a page made in headless Chromium, from its net log: the requests
/// whose network isolation key is the page's (file://), not the browser's own (update
/// checks and the like, which headless Chromium makes whatever the page).
fn external_requests(url: &str) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = headless(&[&format!("--log-net-log={}", log.path().display()), "--dump-dom", url]);
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let netlog: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(log.path()).unwrap()).unwrap();
    let start_job = netlog["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_i64().unwrap();
    let mut found: Vec<String> = netlog["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| e["params"]["network_isolation_key"].as_str().is_some_and(|k| k.starts_with("file://")))
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|u| u.starts_with("http"))
        .map(str::to_string)
        .collect();
    found.dedup();
    found
}

#[test]
fn the_net_log_catches_a_page_that_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("p.html");
    std::fs::write(&page, "<html><body><img src=\"https://example.invalid/x.png\">hi</body></html>").unwrap();
    assert_eq!(external_requests(&format!("file://{}", page.display())), vec!["https://example.invalid/x.png".to_string()]);
}

/// Valid against the official nbformat 4.5 schema (vendored), by a real validator; returns
/// the virtualenv that has it (and nbconvert).
fn assert_valid_notebook(path: &Path) -> std::path::PathBuf {
    let venv = python_venv("requirements-notebook.txt");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nbformat/nbformat.v4.5.schema.json");
    let check = "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1])); nb = json.load(open(sys.argv[2]))\n\
                 jsonschema.Draft4Validator(schema).validate(nb)\n\
                 import nbformat; nbformat.validate(nbformat.read(sys.argv[2], as_version=4))\nprint('valid')";
    let out = Command::new(venv.join("bin/python")).args(["-c", check]).arg(&schema).arg(path).output().unwrap();
    assert!(out.status.success(), "not valid nbformat: {}", String::from_utf8_lossy(&out.stderr));
    venv
}

#[test]
fn the_notebook_is_valid_nbformat_and_renders_with_nbconvert_and_in_a_browser() {
    let env = Env::new("notebook");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "3000", "--weather", "600", "--seed", "4", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(env.tier(&["load"]));
    assert_eq!(code, 0, "{err}");
    let out_dir = env.data().join("reports");
    let (code, _, err) = run(env.tier(&["report", "--queries", QUERIES, "--out", out_dir.to_str().unwrap(), "--format", "ipynb"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out_dir.join("report.html").exists(), "--format ipynb writes only the notebook");
    let path = out_dir.join("report.ipynb");
    let nb: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    // Structure: a first cell on re-running, a markdown cell per section, each saved query a
    // %%sql cell with its table (and chart) as outputs.
    let cells = nb["cells"].as_array().unwrap();
    let text = |c: &serde_json::Value, key: &str| c[key].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<String>();
    assert_eq!(cells[0]["cell_type"], "markdown");
    assert!(text(&cells[0], "source").contains("jupysql") && text(&cells[0], "source").contains("tier query"));
    let queries: Vec<&serde_json::Value> =
        cells.iter().filter(|c| c["cell_type"] == "code" && c["id"].as_str().unwrap().starts_with("q-")).collect();
    assert_eq!(queries.len(), std::fs::read_dir(QUERIES).unwrap().count());
    let mut charts = 0;
    for q in &queries {
        assert!(text(q, "source").starts_with("%%sql\n"), "{q}");
        let outputs = q["outputs"].as_array().unwrap();
        assert!(outputs.iter().all(|o| o["output_type"] == "display_data"), "{q}");
        let table = outputs.last().unwrap();
        assert!(text(&table["data"], "text/html").contains("<table"), "{q}");
        charts += outputs.iter().filter(|o| o["data"].get("image/svg+xml").is_some()).count();
    }
    assert!(charts >= 5, "{charts} charts");
    let md_titles = cells.iter().filter(|c| c["cell_type"] == "markdown" && text(c, "source").starts_with("## ")).count();
    assert!(md_titles >= queries.len() + 3, "sections: loads, datasets, validation and one per query");
    // Numbers as people read them: no float noise in any table.
    let all = std::fs::read_to_string(&path).unwrap();
    assert!(!all.contains("00000000000") && !all.contains("99999999999"), "float noise in the notebook");

    let venv = assert_valid_notebook(&path);

    // A real notebook tool renders it (no kernel: the outputs are in the file), offline:
    // the HTML template's CDN scripts (require.js, MathJax) are left out.
    let template = env.write(
        "offline.html.j2",
        "{%- extends 'lab/index.html.j2' -%}\n{% block html_head_js %}{% endblock %}\n\
         {% block html_head_js_mathjax %}{% endblock %}\n{% block html_head_js_mermaidjs %}{% endblock %}\n",
    );
    let out = Command::new(venv.join("bin/jupyter"))
        .args(["nbconvert", "--to", "html", "--template-file"])
        .arg(&template)
        .arg("--output-dir")
        .arg(&out_dir)
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "nbconvert: {}", String::from_utf8_lossy(&out.stderr));
    let converted = out_dir.join("report.html");
    let url = format!("file://{}", converted.display());
    let dom = headless(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Events per day"), "rendered DOM: {}", &dom[..dom.len().min(500)]);
    let drawn = dom.matches("data-mime-type=\"image/svg+xml\"").count();
    assert!(drawn >= 5, "{drawn} charts in the converted notebook");
    assert_eq!(external_requests(&url), Vec::<String>::new(), "the converted notebook fetched something");
}

#[test]
fn charts_draw_one_series_per_value_with_a_legend() {
    let env = Env::new("report_series");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "3000", "--weather", "900", "--seed", "5", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(run(env.tier(&["load"])).0, 0);
    let out_dir = env.data().join("reports");
    let (code, _, err) = run(env.tier(&["report", "--queries", QUERIES, "--out", out_dir.to_str().unwrap(), "--format", "html"]));
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let cities: Vec<String> =
        env.query_strings("SELECT DISTINCT city FROM {s}.weather ORDER BY 1").into_iter().map(|r| r[0].clone().unwrap()).collect();
    // Temperature per city: one line per city, named in the legend.
    let weather = html.split("id=\"q-weather_daily\"").nth(1).unwrap();
    let desc = weather.split("<desc>").nth(1).unwrap().split("</desc>").next().unwrap();
    assert!(desc.starts_with(&format!("{} series: ", cities.len())), "{desc}");
    for city in &cities {
        assert!(desc.contains(city.as_str()), "{city} missing from {desc}");
    }
    // Rejects per reason, grouped by table.
    let rejects = html.split("id=\"q-rejects\"").nth(1).unwrap();
    assert!(rejects.contains("<desc>2 series: track_events, weather</desc>"), "rejects chart");
    // The page still renders and fetches nothing.
    assert_eq!(external_requests(&format!("file://{}", out_dir.join("report.html").display())), Vec::<String>::new());
}

#[test]
fn watch_rewrites_the_report_when_a_query_changes_or_a_load_lands() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let env = Env::new("report_watch");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let queries = env.data().join("q");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("a.sql"), "-- title: Cities\nselect city from weather").unwrap();
    let out_dir = env.data().join("out");
    let mut child = env
        .tier(&["report", "--watch", "--queries", queries.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--format", "html"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stderr announces each write; read it on a thread.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(what) => return,
                Ok(_) => {}
                Err(_) => panic!("no {what:?} from report --watch"),
            }
        }
    };
    wait_for("report written (started)");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), out_dir.join("report.html").display().to_string(), "stdout names the page once");
    let page = || std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(page().contains("Oslo"));

    // A new query appears in the page.
    std::fs::write(queries.join("b.sql"), "-- title: Humid hours\nselect count(*) as humid from weather where humidity > 0.4").unwrap();
    wait_for("report written (b.sql changed)");
    assert!(page().contains("Humid hours"));
    // A broken query is reported, and watching goes on.
    std::fs::write(queries.join("b.sql"), "-- title: Humid hours\nselect nope from weather").unwrap();
    wait_for("b.sql changed");
    // A load lands: the page shows it.
    env.write("more.json", format!("[{}", weather_line("Bergen", "2019-06-05 10:00:00", "0.7")));
    let more = env.data().join("more.json");
    assert_eq!(run(env.tier(&["load", "weather", "--from", more.to_str().unwrap()])).0, 0);
    // (Still with the broken query: the page is written, and the command says what failed.)
    wait_for("(a load landed)");
    assert!(page().contains("Bergen"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_checks_section_draws_each_check_over_time_with_its_thresholds() {
    let env = Env::new("report_checks");
    let pings = "name = \"pings\"\nday = \"at\"\nmode = \"append\"\n\
        [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"v\"\ntype = \"integer\"\n\
        [[check]]\nname = \"rows per day\"\nmetric = \"row_count\"\nper = \"day\"\nwarn = \"< 3\"\nfail = \"< 1\"\n\
        [[check]]\nname = \"v missing\"\nmetric = \"missing_share(v)\"\nwarn = \"> 0.02\"\n";
    let dir = contract(&env, "pings", pings);
    let d = dir.to_str().unwrap();
    // Ten daily loads, each gated on its day: the 6th day is short (a warning), a v goes
    // missing on the 8th (the whole table's share then warns).
    for day in 1..=10 {
        let rows = if day == 6 { 2 } else { 4 };
        let lines: Vec<String> = (0..rows)
            .map(|h| match (day, h) {
                (8, 0) => format!("{{\"at\": \"2026-11-{day:02} {h:02}:00:00\"}}"),
                _ => format!("{{\"at\": \"2026-11-{day:02} {h:02}:00:00\", \"v\": {h}}}"),
            })
            .collect();
        let file = env.write(&format!("day{day}.json"), lines.join("\n"));
        let (code, _, err) = run(env.tier(&["--datasets", d, "load", "pings", "--from", file.to_str().unwrap()]));
        assert_eq!(code, 0, "{err}");
    }
    // On demand too: every day again, and the latest load alone (a scope, drawn nowhere).
    for more in [&[][..], &["--latest-load"][..]] {
        let mut args = vec!["--datasets", d, "check", "pings"];
        args.extend(more);
        assert_eq!(run(env.tier(&args)).0, 0);
    }
    let out_dir = env.data().join("reports");
    let queries = env.data().join("no-queries");
    std::fs::create_dir_all(&queries).unwrap();
    let (code, _, err) =
        run(env.tier(&["--datasets", d, "report", "--queries", queries.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();

    // Where each stands, as the history says: per day the latest evaluation of each day.
    let history = env.query_strings("SELECT check_name, grp, outcome, id::text AS n FROM {s}.tier_checks ORDER BY id");
    let mut latest: std::collections::BTreeMap<(String, Option<String>), String> = Default::default();
    for row in &history {
        let group = row[1].clone();
        if group.as_deref().is_some_and(|g| g.starts_with("load ")) {
            continue;
        }
        latest.insert((row[0].clone().unwrap(), group), row[2].clone().unwrap());
    }
    let count = |check: &str, outcome: &str| latest.iter().filter(|((c, _), o)| c == check && o.as_str() == outcome).count();
    let evaluations = |check: &str| history.iter().filter(|r| r[0].as_deref() == Some(check)).count();
    assert_eq!((count("rows per day", "pass"), count("rows per day", "warn")), (9, 1));
    let row = format!("| pings | rows per day | row_count per day | < 3 | < 1 | warn | 9 | 1 | 0 | {} | ", evaluations("rows per day"));
    assert!(md.contains(&row), "{row}\n{md}");
    let now = latest[&("v missing".to_string(), None)].clone();
    assert_eq!(now, "warn", "{history:?}");
    assert!(md.contains("| pings | v missing | missing_share(v) | > 0.02 | "), "{md}");
    let row = format!("| warn | 0 | 1 | 0 | {} | ", evaluations("v missing"));
    assert!(md.lines().any(|l| l.contains("| v missing |") && l.contains(&row)), "{row}\n{md}");

    // Each check's chart: a point per day (or per evaluation of the whole table), coloured by
    // its outcome, its thresholds drawn.
    assert!(html.contains("<section id=\"checks\">") && html.contains("href=\"#checks\""));
    let desc = "<desc>rows per day: 10 values, 9 pass, 1 warn, 0 fail; thresholds: warn &lt; 3 (at 3), fail &lt; 1 (at 1)</desc>";
    assert!(html.contains(desc), "{desc}");
    let whole: Vec<&Vec<Option<String>>> = history.iter().filter(|r| r[0].as_deref() == Some("v missing") && r[1].is_none()).collect();
    let of = |o: &str| whole.iter().filter(|r| r[2].as_deref() == Some(o)).count();
    let desc = format!(
        "<desc>v missing: {} values, {} pass, {} warn, 0 fail; thresholds: warn &gt; 0.02 (at 0.02)</desc>",
        whole.len(),
        of("pass"),
        of("warn")
    );
    assert!(of("warn") >= 3 && of("pass") >= 7, "{whole:?}");
    assert!(html.contains(&desc), "{desc}");

    // A real browser: the section is in the page it draws, and each chart alone parses as
    // SVG (an XML parser, unlike HTML's, refuses a broken one) and draws its points.
    let url = format!("file://{}", out_dir.join("report.html").display());
    let dom = String::from_utf8_lossy(&headless(&["--dump-dom", &url]).stdout).to_string();
    assert!(dom.contains("id=\"checks\"") && dom.contains("rows per day: 10 values"), "{}", &dom[..dom.len().min(500)]);
    for (i, svg) in html.split("<svg").skip(1).enumerate() {
        let svg = format!("<svg{}</svg>", svg.split("</svg>").next().unwrap());
        let file = env.write(&format!("chart{i}.svg"), &svg);
        let drawn = String::from_utf8_lossy(&headless(&["--dump-dom", &format!("file://{}", file.display())]).stdout).to_string();
        assert!(!drawn.contains("parsererror") && drawn.matches("<circle").count() >= 10, "chart {i}: {}", &drawn[..drawn.len().min(800)]);
    }
    // The notebook has the section too: the standing table and a chart per check, valid.
    let nb_path = out_dir.join("report.ipynb");
    let nb: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&nb_path).unwrap()).unwrap();
    let cell = |id: &str| nb["cells"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no cell {id}")).clone();
    assert_eq!(cell("checks-history")["outputs"].as_array().unwrap().len(), 2);
    assert!(cell("checks-summary")["outputs"][0]["data"]["text/html"].to_string().contains("rows per day"));
    assert_valid_notebook(&nb_path);
    let shot = env.data().join("checks.png");
    headless(&["--window-size=1200,3000", &format!("--screenshot={}", shot.display()), &url]);
    assert!(std::fs::read(&shot).unwrap().len() > 30_000, "a blank page is tiny");
}
