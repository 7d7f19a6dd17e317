//! docker/: what can be checked without a Docker engine.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

#[test]
fn compose_file_is_valid() {
    let out = Command::new("docker-compose")
        .args(["-f", "docker/docker-compose.yml", "config"])
        .current_dir(ROOT)
        .output()
        .expect("docker-compose is needed for this test: apt-get install docker-compose (.ci/run installs it)");
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // tier waits for a healthy postgres, mounts data/ and reports/, runs the demo.
    assert!(config.contains("condition: service_healthy"), "{config}");
    assert!(config.contains("/data:/app/data") && config.contains("/reports:/app/reports"), "{config}");
    assert!(config.contains("PGHOST: postgres"), "{config}");
    assert!(config.contains("- demo"), "the README's first command: {config}");
}

#[test]
fn dockerfile_builds_like_ci_and_runs_as_non_root() {
    let dockerfile = read("docker/Dockerfile");
    let ci = read(".ci/run");
    let build = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("RUN cargo build"))
        .map(|rest| format!("cargo build{rest}"))
        .expect("the Dockerfile builds with cargo");
    assert!(ci.lines().any(|l| l.trim() == build), "CI must run `{build}` like the Dockerfile");
    assert!(dockerfile.contains("AS build") && dockerfile.contains("COPY --from=build"), "multi-stage");
    // The build embeds the contracts (build.rs), and the image ships them.
    assert!(dockerfile.contains("build.rs") && dockerfile.contains("COPY datasets datasets"), "the build needs build.rs and datasets/");
    assert!(dockerfile.contains("/app/datasets"), "the image ships the contracts");
    let user = dockerfile.lines().rev().find_map(|l| l.trim().strip_prefix("USER ")).expect("a USER line");
    assert_ne!(user.trim(), "root");
    assert!(read("README.md").contains("cargo run --release -- demo"));
}
