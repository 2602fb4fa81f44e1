//! `rubric doc`: the policy document of the flagship policy, as a snapshot of its Markdown and
//! structural checks of its HTML (self-contained, every cross-link lands, rules and dimensions
//! link both ways); the command end to end; and, where Chromium is installed, the HTML opened
//! headless without a console error (without Chromium: a failure under CI, a visible skip elsewhere).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::doc::{PolicyDocument, policy_document, render_html, render_markdown};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn document(path: &str) -> PolicyDocument {
    let compiled = compile_file(Path::new(path), &Options::default()).unwrap();
    policy_document(&compiled)
}

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

/// The values of `attribute="..."` in `html` (or `](#...)` targets in Markdown).
fn attribute_values(text: &str, prefix: &str, end: char) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = text.get(i + prefix.len()..)?;
            rest.find(end)
                .and_then(|j| rest.get(..j))
                .map(str::to_string)
        })
        .collect()
}

/// The part of `html` from the element with `id` up to the next element with an id of `kind`.
fn section<'h>(html: &'h str, id: &str, kind: &str) -> &'h str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section `{id}`"));
    let rest = &html[start + 1..];
    let end = rest
        .find(&format!("id=\"{kind}"))
        .or_else(|| rest.find("id=\"overall-grade\""))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_markdown_of_job_match() {
    let doc = document("policies/job_match.policy");
    let markdown = render_markdown(&doc);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/doc");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("job_match.md", markdown));
}

/// A model that reads no text says so (`reads []`); one whose `reads` is left out reads every
/// text field, and its line lists what the pipeline wrote (nothing).
#[test]
fn a_model_that_reads_no_text_says_so() {
    let original = std::fs::read_to_string("policies/job_match.policy").unwrap();
    let reads =
        "    reads [query.title, query.description, candidate.headline, candidate.summary]\n";
    let (at, _) = original
        .match_indices(reads)
        .next()
        .expect("the policy teacher's reads");
    let edited = format!(
        "{}    reads []\n{}",
        &original[..at],
        &original[at + reads.len()..]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job_match.policy");
    std::fs::write(&path, edited).unwrap();
    let markdown = render_markdown(&document(path.to_str().unwrap()));
    let line = |teacher: &str| -> String {
        let head = format!("- **Teacher** `{teacher}`:");
        markdown
            .lines()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no line for `{teacher}`"))
            .to_string()
    };
    assert!(
        line("policy").contains("; reads no text;"),
        "{}",
        line("policy")
    );
    assert!(!line("click").contains("reads"), "{}", line("click"));
}

#[test]
fn the_document_is_deterministic() {
    let a = document("policies/job_match.policy");
    let b = document("policies/job_match.policy");
    assert_eq!(render_markdown(&a), render_markdown(&b));
    assert_eq!(render_html(&a), render_html(&b));
}

#[test]
fn every_link_lands_in_both_renderings() {
    for policy in ["policies/job_match.policy", "policies/feed_ranking.policy"] {
        let doc = document(policy);
        let html = render_html(&doc);
        let ids = attribute_values(&html, " id=\"", '"');
        let targets = attribute_values(&html, "href=\"#", '"');
        assert!(targets.len() > 20, "{policy}: only {} links", targets.len());
        let dangling: Vec<&String> = targets.difference(&ids).collect();
        assert!(
            dangling.is_empty(),
            "{policy}: HTML links to nowhere: {dangling:?}"
        );

        let markdown = render_markdown(&doc);
        let ids = attribute_values(&markdown, "<a id=\"", '"');
        let targets = attribute_values(&markdown, "](#", ')');
        let dangling: Vec<&String> = targets.difference(&ids).collect();
        assert!(
            dangling.is_empty(),
            "{policy}: Markdown links to nowhere: {dangling:?}"
        );
    }
}

#[test]
fn the_html_is_self_contained_and_has_no_script() {
    let html = render_html(&document("policies/job_match.policy"));
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    assert!(html.contains("<style>"));
    for forbidden in [
        "<script", "<link", "<img", "<iframe", " src=", "@import", "url(",
    ] {
        assert!(!html.contains(forbidden), "the page holds `{forbidden}`");
    }
    // Every element this document opens, it closes.
    for tag in [
        "table",
        "ul",
        "pre",
        "blockquote",
        "nav",
        "h2",
        "h3",
        "p",
        "li",
        "a",
        "code",
    ] {
        let opened =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let closed = html.matches(&format!("</{tag}>")).count();
        assert_eq!(
            opened, closed,
            "<{tag}> opened {opened} times, closed {closed}"
        );
    }
}

#[test]
fn each_dimension_has_its_section_weight_logic_and_grades() {
    let html = render_html(&document("policies/job_match.policy"));
    let skills = section(&html, "dimension-skill_match", "dimension-");
    assert!(skills.contains("weight 30%"), "{skills}");
    assert!(skills.contains("<th>when (the first that holds)</th><th>score</th>"));
    assert!(skills.contains("<code>strong</code>"));
    assert!(skills.contains("meets nearly every must-have skill"));
    let seniority = section(&html, "dimension-seniority", "dimension-");
    assert!(seniority.contains("seniority_fit(candidate.seniority, query.seniority)"));
}

#[test]
fn rules_link_to_the_dimensions_they_touch_and_back() {
    let html = render_html(&document("policies/job_match.policy"));
    let rule = section(&html, "rule-onsite_needs_presence", "rule-");
    assert!(rule.contains("<blockquote><p><strong>Because</strong> the role is on site"));
    assert!(rule.contains("href=\"#dimension-location\""), "{rule}");
    assert!(!rule.contains("href=\"#dimension-skill_match\""), "{rule}");
    let location = section(&html, "dimension-location", "dimension-");
    assert!(
        location.contains("href=\"#rule-onsite_needs_presence\""),
        "{location}"
    );
    assert!(
        !location.contains("href=\"#rule-dormant_profile\""),
        "{location}"
    );
}

#[test]
fn examples_are_tables_with_todays_labels() {
    let html = render_html(&document("policies/job_match.policy"));
    let example = section(&html, "example-7", "example-");
    assert!(example.contains("<th>expectation</th><th>today</th><th>holds</th>"));
    assert!(
        example.contains(
            "<td><code>rule onsite_needs_presence fires</code></td><td>fires</td><td>yes</td>"
        ),
        "{example}"
    );
    assert!(
        example.contains("<td><code>location</code></td><td><code>&quot;Munich&quot;</code></td>"),
        "{example}"
    );
}

#[test]
fn rubric_doc_writes_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = rubric(&[
        "doc",
        "policies/feed_ranking.policy",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = document("policies/feed_ranking.policy");
    let md = std::fs::read_to_string(out.join("feed_ranking.md")).unwrap();
    let html = std::fs::read_to_string(out.join("feed_ranking.html")).unwrap();
    assert_eq!(md, render_markdown(&doc));
    assert_eq!(html, render_html(&doc));
}

#[test]
fn rubric_doc_refuses_a_broken_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.policy");
    std::fs::write(
        &policy,
        "policy p version 1 { dimension d weight 50% { score = 1 } }",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = rubric(&[
        "doc",
        policy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium

#[path = "support/prerequisite.rs"]
mod prerequisite;

fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

/// Opens `page` in headless Chromium (a fresh profile, nothing reached over the network) and
/// returns the console errors it logged, and the DOM it printed. Output goes to files (the DOM
/// is larger than a pipe holds) and Chromium gets a minute before it is killed.
fn console_errors(browser: &Path, page: &Path) -> (Vec<String>, String) {
    let scratch = tempfile::tempdir().unwrap();
    let profile = scratch.path().join("profile");
    let (out, err) = (
        scratch.path().join("dom.html"),
        scratch.path().join("log.txt"),
    );
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("chromium starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    let errors = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .map(str::to_string)
        .collect();
    (errors, std::fs::read_to_string(&out).unwrap_or_default())
}

#[test]
fn the_html_opens_in_headless_chromium_without_console_errors() {
    let Some(browser) = prerequisite::prerequisite(
        chromium(),
        "no Chromium (/usr/bin/chromium or `chromium` on PATH)",
        "install it with `apt-get install -y chromium`",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let doc = document("policies/job_match.policy");
    let page = dir.path().join("job_match.html");
    std::fs::write(&page, render_html(&doc)).unwrap();
    let (errors, dom) = console_errors(&browser, &page);
    assert!(
        dom.contains("id=\"dimension-skill_match\""),
        "Chromium did not render the page: {dom:.500}"
    );
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));

    // The check can fail: a page with a broken inline script is caught.
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><head><title>x</title></head><body><p id=\"here\">x</p>\
         <script>this is not javascript(</script></body></html>",
    )
    .unwrap();
    let (errors, dom) = console_errors(&browser, &broken);
    assert!(dom.contains("id=\"here\""), "{dom}");
    assert!(!errors.is_empty(), "a broken script went unnoticed");
}
