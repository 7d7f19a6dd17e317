//! The documentation: every relative link of README.md and docs/ resolves (file and heading),
//! every command and option of `tier --help` is in the reference, and the man pages and
//! completions come from the same declarations.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// A page's text without its fenced code blocks (links and headings there are not links).
fn prose(text: &str) -> String {
    text.split("```").step_by(2).collect::<Vec<_>>().join("\n")
}

/// GitHub's anchor for a heading: lowercase, spaces as hyphens, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    prose(&std::fs::read_to_string(page).unwrap())
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = prose(&std::fs::read_to_string(&page).unwrap());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            checked += 1;
            let (path, heading) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() { page.clone() } else { page.parent().unwrap().join(path) };
            if !file.exists() {
                broken.push(format!("{}: {target} (no such file)", page.display()));
            } else if !heading.is_empty() && file.extension().is_some_and(|x| x == "md") && !anchors(&file).contains(heading) {
                broken.push(format!("{}: {target} (no such heading)", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(checked > 10, "{checked} links checked");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 300, "the README stays short: {} lines", readme.lines().count());
}

/// The commands `tier --help` lists, and the long options of one's `-h`.
fn listed(help: &str, section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.ends_with(':') && !line.starts_with(' ') {
            inside = line == section;
            continue;
        }
        // An entry's own line (two spaces in, or six for a long option alone); deeper lines
        // continue the description above.
        let indent = line.len() - line.trim_start().len();
        let entry = match section {
            "Options:" => line.trim_start().starts_with('-') && indent <= 6,
            _ => indent == 2,
        };
        if inside && entry {
            let word = line.split_whitespace().find(|w| section != "Options:" || w.starts_with("--"));
            if let Some(w) = word {
                out.push(w.trim_end_matches(',').trim_end_matches("...").to_string());
            }
        }
    }
    out
}

#[test]
fn every_command_and_option_is_in_the_reference() {
    let reference = std::fs::read_to_string(root().join("docs/commands.md")).unwrap();
    let env = Env::new("docs_help");
    let (code, help, _) = run(env.tier_plain(&["--help"]));
    assert_eq!(code, 0);
    let commands: Vec<String> = listed(&help, "Commands:").into_iter().filter(|c| c != "help").collect();
    assert!(commands.len() >= 11, "{commands:?}");
    let mut missing = Vec::new();
    let mut options = 0;
    for command in &commands {
        if !reference.contains(&format!("`tier {command}")) {
            missing.push(format!("tier {command}"));
        }
        let (code, help, _) = run(env.tier_plain(&[command, "-h"]));
        assert_eq!(code, 0, "{command}");
        assert!(help.contains(&format!("Usage: tier {command}")), "{help}");
        for option in listed(&help, "Options:") {
            options += 1;
            if !reference.contains(&option) {
                missing.push(format!("tier {command} {option}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/commands.md: {missing:?}");
    assert!(options > 80, "{options} options checked");
    // Each command's --help shows examples.
    for command in ["load", "infer", "validate", "query", "report"] {
        let (_, help, _) = run(env.tier_plain(&[command, "--help"]));
        assert!(help.contains("Examples:\n  tier "), "{command}: {help}");
    }
}

#[test]
fn man_pages_and_completions_come_from_the_command_line() {
    let env = Env::new("docs_man");
    let out = env.data().join("man");
    let (code, _, err) = run(env.tier_plain(&["man", "--out", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    for page in ["tier.1", "tier-load.1", "tier-query.1", "tier-completions.1"] {
        let text = std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH") && text.contains("SYNOPSIS"), "{page}: {text}");
    }
    assert!(std::fs::read_to_string(out.join("tier-load.1")).unwrap().contains("max\\-reject\\-ratio"));
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = run(env.tier_plain(&["completions", shell]));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(script.contains("tier") && script.contains("validate") && script.contains("max-reject-ratio"), "{shell}");
    }
}
