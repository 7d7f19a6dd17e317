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
