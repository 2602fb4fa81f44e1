//! The corpus of broken policies: each file under `tests/corpus/` declares the diagnostic codes
//! it must produce in a header line `// expect: code, code`; the test asserts exactly those
//! codes and snapshots the source with its rendered diagnostics, as an author would see them.
//! Modules the corpus imports live in `tests/corpus/lib/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::diagnostics::render_all;
use rubric_compiler::{Code, ErrorFormat, Options};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn expected_codes(text: &str, path: &Path) -> BTreeSet<Code> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("// expect:"))
        .unwrap_or_else(|| panic!("{}: no `// expect:` header", path.display()));
    line.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            Code::parse(c)
                .unwrap_or_else(|| panic!("{}: unknown code `{c}` in header", path.display()))
        })
        .collect()
}

#[test]
fn every_corpus_file_reports_exactly_its_codes() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/corpus");
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(r"/[^\s`]*/tests/corpus/", "tests/corpus/");
    settings.bind(|| {
        insta::glob!("corpus/*.policy", |path| {
            // Read as bytes: the corpus holds a file that is not UTF-8 on purpose.
            let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = String::from_utf8_lossy(&bytes);
            let relative = Path::new("tests/corpus").join(path.file_name().unwrap_or_default());
            let checked = rubric_runtime::project::check_file(&relative, &Options::default())
                .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
            let got: BTreeSet<Code> = checked.diagnostics.iter().map(|d| d.code).collect();
            let want = expected_codes(&text, path);
            let names = |s: &BTreeSet<Code>| s.iter().map(|c| c.as_str()).collect::<Vec<_>>();
            assert_eq!(
                names(&got),
                names(&want),
                "{}: the codes reported differ from the header",
                relative.display()
            );
            let rendered = render_all(
                &checked.diagnostics,
                &checked.sources,
                ErrorFormat::Human,
                80,
                false,
            );
            insta::assert_snapshot!(format!("--- SOURCE\n{text}\n--- DIAGNOSTICS\n{rendered}"));
        });
    });
}

#[test]
fn every_registered_code_has_a_corpus_file() {
    let mut covered = BTreeSet::new();
    for entry in fs::read_dir("tests/corpus").expect("tests/corpus exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "policy") {
            let bytes = fs::read(&path).expect("readable corpus file");
            let text = String::from_utf8_lossy(&bytes);
            covered.extend(expected_codes(&text, &path));
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !covered.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a corpus file in tests/corpus: {missing:?}"
    );
}

#[test]
fn the_corpus_has_at_least_fifty_files() {
    let count = fs::read_dir("tests/corpus")
        .expect("tests/corpus exists")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "policy"))
        })
        .count();
    assert!(count >= 50, "only {count} corpus files");
}
