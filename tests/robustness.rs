//! Robustness: the checker never panics, whatever it is handed. The shipped policies are mutated
//! at two levels and every mutant is checked:
//!
//! - token level: the text is cut into tokens (words, numbers, strings, punctuation, comments)
//!   and tokens are deleted, duplicated, swapped or inserted (from the file itself or from a set
//!   of tricky ones), or the file is truncated; most of these mutants do not parse;
//! - tree level: the text is parsed and one node is replaced by the text of another node of the
//!   same kind (expressions, items, grade bands, match and `when` arms, literals, example records,
//!   pipeline settings, ...), an item is deleted, duplicated or swapped, a number is changed or an
//!   identifier renamed; most of these mutants still parse and reach the checker's deeper passes.
//!
//! Every mutant is checked on its own and again from a second file (a mutated standard module
//! renamed `lib.x` and imported by a small policy; a mutated policy named by a pipeline in a file
//! of its own), so that diagnostics also point into files other than the one checked. Each time
//! `check_source` must return, every label of every diagnostic must lie inside its file's text on
//! char boundaries (and every error must have a primary label), and rendering must not panic. A
//! failure names the mutant (file, edits), prints its text and writes it under
//! `target/tmp/robustness/`. The runs are seeded, so CI sees the same mutants every time
//! (`RUBRIC_ROBUSTNESS_SEED` and `RUBRIC_ROBUSTNESS_CASES` explore further). Nesting and size
//! limits have their own fixed cases in `tests/limits.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rubric_compiler::diagnostics::render_all;
use rubric_compiler::syntax::{self, ast};
use rubric_compiler::{
    Checked, ErrorFormat, FileId, Limits, MemoryModules, ModuleProvider, NoModules, Options, Span,
    check_source,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Once, OnceLock};

// ---------------------------------------------------------------------------------------------
// The policies to mutate

struct Original {
    name: String,
    text: String,
    /// How the file is also read from a second file, if it can be.
    seen_from: Option<SeenFrom>,
}

/// A second way to check a mutant, so that its diagnostics carry spans into a file other than
/// the one being checked: a module imported by a small policy, or the policy that a pipeline in
/// a file of its own names.
enum SeenFrom {
    /// `module std.x` renamed `module lib.x` (the standard library itself is embedded) and
    /// imported, every function and enum of it, by `importer`.
    Importer {
        header: String,
        renamed: String,
        key: String,
        importer: String,
    },
    /// The policy `name`, read by a file holding only the language sketch's pipeline.
    Pipeline { name: String, pipeline: String },
}

impl SeenFrom {
    fn of(text: &str) -> Option<SeenFrom> {
        let tree = parse(text)?;
        match tree.items.first()? {
            ast::TopItem::Module(m) => {
                let last = m.path.segments().last()?.to_string();
                let names: Vec<&str> = m
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        ast::Item::Fn(f) => Some(f.name.name.as_str()),
                        ast::Item::Enum(e) => Some(e.name.name.as_str()),
                        _ => None,
                    })
                    .collect();
                Some(SeenFrom::Importer {
                    header: format!("module {}", m.path.raw),
                    renamed: format!("module lib.{last}"),
                    key: format!("lib.{last}"),
                    importer: format!(
                        "policy importer version 1 {{\n  use lib.{last}.{{{}}}\n  entity A {{ x: number }}\n  \
                         pair query: A, candidate: A\n  dimension d weight 100% {{ score = 0.5 }}\n  \
                         grade overall {{ good when overall >= 0.5  poor otherwise }}\n}}\n",
                        names.join(", ")
                    ),
                })
            }
            ast::TopItem::Policy(p) => {
                let sketch = &originals_text("examples/language_sketch/job_match.policy");
                let at = sketch.find("\npipeline ")?;
                let pipeline =
                    sketch[at..].replacen(" for job_match ", &format!(" for {} ", p.name.name), 1);
                Some(SeenFrom::Pipeline {
                    name: p.name.name.clone(),
                    pipeline,
                })
            }
            ast::TopItem::Pipeline(_) => None,
        }
    }

    /// The file to check, its name and the provider holding the mutant.
    fn files(&self, mutant: &str) -> (&'static str, String, MemoryModules) {
        let mut provider = MemoryModules::default();
        match self {
            SeenFrom::Importer {
                header,
                renamed,
                key,
                importer,
            } => {
                provider
                    .modules
                    .insert(key.clone(), mutant.replacen(header.as_str(), renamed, 1));
                ("importer.policy", importer.clone(), provider)
            }
            SeenFrom::Pipeline { name, pipeline } => {
                provider.policies.insert(name.clone(), mutant.to_string());
                ("pipeline.policy", pipeline.clone(), provider)
            }
        }
    }
}

fn originals_text(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn originals() -> &'static [Original] {
    static ORIGINALS: OnceLock<Vec<Original>> = OnceLock::new();
    ORIGINALS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = vec![
            root.join("policies/job_match.policy"),
            root.join("examples/language_sketch/job_match.policy"),
        ];
        let mut std: Vec<_> = std::fs::read_dir(root.join("stdlib/std"))
            .expect("stdlib/std")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "policy"))
            .collect();
        std.sort();
        paths.extend(std);
        paths
            .into_iter()
            .map(|p| {
                let text =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                Original {
                    name: p.strip_prefix(root).unwrap_or(&p).display().to_string(),
                    seen_from: SeenFrom::of(&text),
                    text,
                }
            })
            .collect()
    })
}

/// A mutant: the text, and what was done to which file to get it.
struct Mutant {
    file: String,
    edits: Vec<String>,
    text: String,
}

impl Mutant {
    fn describe(&self) -> String {
        format!("mutant of {} by [{}]", self.file, self.edits.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// Checking one mutant

/// A runner with a fixed seed, so that CI sees the same mutants every run. To explore beyond
/// them: `RUBRIC_ROBUSTNESS_SEED=<number>` mixes another seed in, and
/// `RUBRIC_ROBUSTNESS_CASES=<factor>` multiplies the number of mutants.
fn runner(cases: u32, seed: u8) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let extra = env("RUBRIC_ROBUSTNESS_SEED").unwrap_or(0).to_le_bytes();
    let factor = env("RUBRIC_ROBUSTNESS_CASES").unwrap_or(1).max(1);
    let mut bytes = [seed; 32];
    bytes[..4].copy_from_slice(&extra.map(|b| b ^ seed));
    let config = Config {
        cases: cases.saturating_mul(factor),
        failure_persistence: None,
        max_shrink_iters: 64,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

thread_local! {
    /// Set while this thread checks a mutant: its panics are caught and reported with the mutant.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic happened.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`, turning a panic into an error that says where it happened. The panic hook stays
/// quiet for these panics (shrinking would otherwise print one backtrace per attempt); panics
/// elsewhere are reported as usual.
fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let at = info
                    .location()
                    .map_or_else(String::new, |l| format!(" at {l}"));
                LAST_PANIC.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        format!("{message}{}", LAST_PANIC.with(|p| p.borrow().clone()))
    })
}

fn check(text: &str) -> Result<Checked, String> {
    check_in("mutant.policy", text, &mut NoModules)
}

fn check_in(name: &str, text: &str, provider: &mut dyn ModuleProvider) -> Result<Checked, String> {
    catching(|| check_source(name, text, provider, &Options::default()))
        .map_err(|p| format!("check_source panicked: {p}"))
}

/// Every label inside its file's text, on char boundaries; every error with a primary label.
fn spans_are_sound(checked: &Checked) -> Result<(), String> {
    for d in &checked.diagnostics {
        let what = || format!("diagnostic {} \"{}\"", d.code.as_str(), d.message);
        if d.is_error() && !d.labels.iter().any(|l| l.primary) {
            return Err(format!("{} has no primary label", what()));
        }
        for label in &d.labels {
            let Span { file, start, end } = label.span;
            let Some(source) = checked.sources.get(file) else {
                return Err(format!("{}: label in unknown file {file:?}", what()));
            };
            let text = &source.text;
            let (start, end) = (start as usize, end as usize);
            if start > end || end > text.len() {
                return Err(format!(
                    "{}: label {start}..{end} outside {} ({} bytes)",
                    what(),
                    source.name,
                    text.len()
                ));
            }
            if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                return Err(format!(
                    "{}: label {start}..{end} in {} not on a char boundary",
                    what(),
                    source.name
                ));
            }
        }
    }
    Ok(())
}

fn render(checked: &Checked) -> Result<String, String> {
    catching(|| {
        render_all(
            &checked.diagnostics,
            &checked.sources,
            ErrorFormat::Human,
            80,
            false,
        )
    })
    .map_err(|p| format!("render_all panicked: {p}"))
}

/// Checks a mutant, on its own and as seen from a second file; on any failure, an error naming
/// the mutant and holding its text.
fn examine(original: &Original, mutant: &Mutant) -> Result<Checked, TestCaseError> {
    let sound = |checked: Checked| {
        spans_are_sound(&checked)?;
        render(&checked)?;
        Ok(checked)
    };
    let checked = check(&mutant.text)
        .and_then(sound)
        .map_err(|problem| fail(mutant, &problem))?;
    if let Some(seen_from) = &original.seen_from {
        let (name, text, mut provider) = seen_from.files(&mutant.text);
        check_in(name, &text, &mut provider)
            .and_then(sound)
            .map_err(|problem| {
                fail(
                    mutant,
                    &format!("{problem}\n(checked from {name}:\n{text})"),
                )
            })?;
    }
    Ok(checked)
}

fn fail(mutant: &Mutant, problem: &str) -> TestCaseError {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("robustness");
    let saved = std::fs::create_dir_all(&dir).ok().and_then(|()| {
        let name = format!("mutant-{:016x}.policy", fingerprint(&mutant.text));
        let path = dir.join(name);
        std::fs::write(&path, &mutant.text).ok().map(|()| path)
    });
    let saved = saved.map_or_else(String::new, |p| format!(" (saved as {})", p.display()));
    TestCaseError::fail(format!(
        "{problem}\n{}{saved}\n--- mutant text ---\n{}\n--- end of mutant ---",
        mutant.describe(),
        mutant.text
    ))
}

fn fingerprint(text: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn report<T: std::fmt::Debug>(result: Result<(), TestError<T>>) {
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, _)) => panic!("{reason}"),
        Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Token level

/// Splits a text into pieces, each one token with the whitespace in front of it; the last piece
/// may be whitespace alone. Concatenating the pieces gives the text back.
fn tokenize(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
        let end = token_end(text, i);
        pieces.push(text[start..end].to_string());
        start = end;
        i = end;
    }
    if start < text.len() {
        pieces.push(text[start..].to_string());
    }
    pieces
}

fn token_end(text: &str, i: usize) -> usize {
    let bytes = text.as_bytes();
    let rest = &text[i..];
    let c = rest.chars().next().unwrap_or(' ');
    let scan = |pred: &dyn Fn(char) -> bool| {
        i + rest
            .char_indices()
            .find(|&(_, ch)| !pred(ch))
            .map_or(rest.len(), |(k, _)| k)
    };
    if rest.starts_with("//") {
        return i + rest.find('\n').unwrap_or(rest.len());
    }
    if c == '"' {
        let mut j = i + 1;
        while j < text.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                b'\n' => return j,
                _ => j += 1,
            }
        }
        return text.len().min(j);
    }
    if c.is_ascii_digit() {
        return scan(&|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '%' || ch == '_');
    }
    if c.is_ascii_alphabetic() || c == '_' {
        return scan(&|ch| ch.is_ascii_alphanumeric() || ch == '_');
    }
    for op in ["=>", "->", "==", "!=", "<=", ">=", "??"] {
        if rest.starts_with(op) {
            return i + op.len();
        }
    }
    i + c.len_utf8()
}

fn tricky_tokens() -> Vec<String> {
    let mut t: Vec<String> = [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\"",
        "///",
        "//",
        "%",
        "=>",
        "??",
        "-",
        "not",
        "1e999",
        "-1e999",
        "0.0",
        "abstain",
        "otherwise",
        "_",
        ".",
        ",",
        ":",
        "<",
        "héllo wörld ✓ 日本語 🎉",
        "\u{0}",
        "\u{FEFF}",
        "\r",
        "\"unterminated",
        "\"\\",
        "99999999999999999999",
        "1e-400",
        "100%",
        "0ms",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    t.push("a".repeat(10_000));
    t.push(format!("x{}", "_long".repeat(200)));
    t
}

#[derive(Clone, Debug)]
enum TokenEdit {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    InsertOwn(Index, Index),
    InsertTricky(Index, Index),
    Truncate(Index),
}

fn token_edit() -> impl Strategy<Value = TokenEdit> {
    prop_oneof![
        3 => any::<Index>().prop_map(TokenEdit::Delete),
        2 => any::<Index>().prop_map(TokenEdit::Duplicate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TokenEdit::Swap(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TokenEdit::InsertOwn(a, b)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TokenEdit::InsertTricky(a, b)),
        1 => any::<Index>().prop_map(TokenEdit::Truncate),
    ]
}

fn shown(token: &str) -> String {
    let t = token.trim_start();
    if t.chars().count() > 40 {
        format!(
            "{:?}… ({} bytes)",
            t.chars().take(40).collect::<String>(),
            t.len()
        )
    } else {
        format!("{t:?}")
    }
}

fn token_mutant(original: &Original, edits: &[TokenEdit]) -> Mutant {
    let tricky = tricky_tokens();
    let own = tokenize(&original.text);
    let mut pieces = own.clone();
    let mut log = Vec::new();
    for edit in edits {
        if pieces.is_empty() {
            break;
        }
        let n = pieces.len();
        match edit {
            TokenEdit::Delete(i) => {
                let i = i.index(n);
                log.push(format!("delete token {i} {}", shown(&pieces[i])));
                pieces.remove(i);
            }
            TokenEdit::Duplicate(i) => {
                let i = i.index(n);
                log.push(format!("duplicate token {i} {}", shown(&pieces[i])));
                let copy = format!(" {}", pieces[i].trim_start());
                pieces.insert(i + 1, copy);
            }
            TokenEdit::Swap(a, b) => {
                let (a, b) = (a.index(n), b.index(n));
                log.push(format!(
                    "swap tokens {a} {} and {b} {}",
                    shown(&pieces[a]),
                    shown(&pieces[b])
                ));
                let (ta, tb) = (
                    pieces[a].trim_start().to_string(),
                    pieces[b].trim_start().to_string(),
                );
                let (wa, wb) = (pieces[a].len() - ta.len(), pieces[b].len() - tb.len());
                pieces[a] = format!("{}{tb}", &pieces[a][..wa]);
                pieces[b] = format!("{}{ta}", &pieces[b][..wb]);
            }
            TokenEdit::InsertOwn(at, what) => {
                let at = at.index(n + 1);
                let token = own[what.index(own.len())].trim_start().to_string();
                log.push(format!("insert {} before token {at}", shown(&token)));
                pieces.insert(at, format!(" {token}"));
            }
            TokenEdit::InsertTricky(at, what) => {
                let at = at.index(n + 1);
                let token = &tricky[what.index(tricky.len())];
                log.push(format!("insert {} before token {at}", shown(token)));
                pieces.insert(at, format!(" {token}"));
            }
            TokenEdit::Truncate(at) => {
                let text: String = pieces.concat();
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                log.push(format!("truncate at byte {cut} of {}", text.len()));
                pieces = vec![text[..cut].to_string()];
                // Later edits work on the truncated text's tokens.
                pieces = tokenize(&pieces[0]);
            }
        }
    }
    Mutant {
        file: original.name.clone(),
        edits: log,
        text: pieces.concat(),
    }
}

#[test]
fn the_tokenizer_gives_the_text_back() {
    for original in originals() {
        assert_eq!(
            tokenize(&original.text).concat(),
            original.text,
            "{}",
            original.name
        );
    }
}

#[test]
fn every_original_checks_without_errors_from_a_second_file() {
    for original in originals() {
        let seen_from = original
            .seen_from
            .as_ref()
            .unwrap_or_else(|| panic!("{} is neither a policy nor a module", original.name));
        let (name, text, mut provider) = seen_from.files(&original.text);
        let checked = check_in(name, &text, &mut provider).unwrap();
        assert!(
            !checked.has_errors() && checked.sources.iter().count() >= 2,
            "{} from {name}:\n{}",
            original.name,
            render(&checked).unwrap()
        );
    }
}

#[test]
fn token_level_mutants_never_crash_the_checker() {
    let originals = originals();
    let parsed = Cell::new(0u32);
    let total = Cell::new(0u32);
    let strategy = (any::<Index>(), prop::collection::vec(token_edit(), 1..=3));
    let result = runner(800, 1).run(&strategy, |(file, edits)| {
        let original = &originals[file.index(originals.len())];
        let mutant = token_mutant(original, &edits);
        let checked = examine(original, &mutant)?;
        total.set(total.get() + 1);
        parsed.set(parsed.get() + u32::from(checked.tree.is_some()));
        Ok(())
    });
    report(result);
    println!(
        "token level: {} of {} mutants parse ({:.0}%)",
        parsed.get(),
        total.get(),
        100.0 * f64::from(parsed.get()) / f64::from(total.get().max(1))
    );
}

// ---------------------------------------------------------------------------------------------
// Syntax-tree level

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Expr,
    Item,
    Field,
    Band,
    MatchArm,
    WhenArm,
    Literal,
    TableEntry,
    Record,
    Expectation,
    Setting,
    PipelineBlock,
}

/// Spans of the nodes of one parsed file, by kind.
#[derive(Default)]
struct Nodes {
    by_kind: BTreeMap<Kind, Vec<Range<usize>>>,
    /// Items of policies and modules, and blocks of pipelines: deleted, duplicated, swapped.
    items: Vec<Range<usize>>,
    /// Number literals; `true` for percents.
    numbers: Vec<(Range<usize>, bool)>,
    identifiers: Vec<Range<usize>>,
}

impl Nodes {
    fn of(tree: &ast::SourceTree) -> Nodes {
        let mut nodes = Nodes::default();
        for top in &tree.items {
            match top {
                ast::TopItem::Policy(p) => {
                    nodes.ident(&p.name);
                    p.items.iter().for_each(|i| nodes.item(i));
                }
                ast::TopItem::Module(m) => m.items.iter().for_each(|i| nodes.item(i)),
                ast::TopItem::Pipeline(p) => nodes.pipeline(p),
            }
        }
        nodes
    }

    fn push(&mut self, kind: Kind, span: Span) {
        self.by_kind.entry(kind).or_default().push(span.range());
    }

    fn ident(&mut self, ident: &ast::Ident) {
        self.identifiers.push(ident.span.range());
    }

    fn item(&mut self, item: &ast::Item) {
        self.push(Kind::Item, item.span());
        self.items.push(item.span().range());
        match item {
            ast::Item::Use(u) => u.names.iter().for_each(|n| self.ident(n)),
            ast::Item::Entity(e) => {
                self.ident(&e.name);
                for f in &e.fields {
                    self.push(Kind::Field, f.span);
                    self.ident(&f.name);
                    self.ty(&f.ty);
                }
            }
            ast::Item::Enum(e) => {
                self.ident(&e.name);
                e.variants.iter().for_each(|v| self.ident(&v.name));
            }
            ast::Item::Pair(p) => {
                for role in [&p.query, &p.candidate] {
                    self.ident(&role.name);
                    self.ident(&role.entity);
                }
            }
            ast::Item::Table(t) => {
                self.ident(&t.name);
                t.keys.iter().for_each(|k| self.ty(k));
                self.ty(&t.value);
                self.literal(&t.default);
                for entry in &t.entries {
                    self.push(Kind::TableEntry, entry.span);
                    entry.keys.iter().for_each(|k| self.literal(k));
                    self.literal(&entry.value);
                }
            }
            ast::Item::Fn(f) => {
                self.ident(&f.name);
                for p in &f.params {
                    self.ident(&p.name);
                    self.ty(&p.ty);
                }
                self.ty(&f.result);
                self.expr(&f.body);
            }
            ast::Item::Dimension(d) => {
                self.ident(&d.name);
                self.numbers.push((d.weight_span.range(), true));
                for l in &d.lets {
                    self.ident(&l.name);
                    self.expr(&l.value);
                }
                d.score.iter().for_each(|s| self.expr(&s.value));
                d.grades.iter().for_each(|g| self.grades(g));
            }
            ast::Item::Rule(r) => {
                self.ident(&r.name);
                self.expr(&r.condition);
                if let ast::RuleAction::SetGrade(g) = &r.action {
                    self.ident(g);
                }
            }
            ast::Item::OverallGrade(g) => self.grades(g),
            ast::Item::Example(e) => {
                for record in &e.records {
                    self.push(Kind::Record, record.span);
                    self.ident(&record.role);
                    for field in &record.fields {
                        self.ident(&field.name);
                        self.literal(&field.value);
                    }
                }
                for expectation in &e.expectations {
                    match expectation {
                        ast::Expectation::Compare {
                            target,
                            value,
                            span,
                            ..
                        } => {
                            self.push(Kind::Expectation, *span);
                            if let Some(d) = &target.dimension {
                                self.ident(d);
                            }
                            self.literal(value);
                        }
                        ast::Expectation::Rule { rule, span, .. } => {
                            self.push(Kind::Expectation, *span);
                            self.ident(rule);
                        }
                    }
                }
            }
            ast::Item::MinCoverage(_) => {}
        }
    }

    fn ty(&mut self, ty: &ast::TypeExpr) {
        self.ident(&ty.name);
        if let Some(arg) = &ty.arg {
            self.ty(arg);
        }
    }

    fn grades(&mut self, block: &ast::GradeBlock) {
        for band in &block.bands {
            self.push(Kind::Band, band.span);
            self.ident(&band.name);
            if let Some(c) = &band.condition {
                self.expr(c);
            }
        }
    }

    fn literal(&mut self, literal: &ast::Literal) {
        self.push(Kind::Literal, literal.span);
        match &literal.kind {
            ast::LiteralKind::Number(_) => self.numbers.push((literal.span.range(), false)),
            ast::LiteralKind::Percent(_) => self.numbers.push((literal.span.range(), true)),
            ast::LiteralKind::Name(ids) => ids.iter().for_each(|i| self.ident(i)),
            ast::LiteralKind::List(items) => items.iter().for_each(|l| self.literal(l)),
            ast::LiteralKind::String(_) | ast::LiteralKind::Bool(_) | ast::LiteralKind::Abstain => {
            }
        }
    }

    fn expr(&mut self, expr: &ast::Expr) {
        self.push(Kind::Expr, expr.span);
        match &expr.kind {
            ast::ExprKind::Number(_) => self.numbers.push((expr.span.range(), false)),
            ast::ExprKind::Percent(_) => self.numbers.push((expr.span.range(), true)),
            ast::ExprKind::Duration(_)
            | ast::ExprKind::String(_)
            | ast::ExprKind::Bool(_)
            | ast::ExprKind::Abstain => {}
            ast::ExprKind::List(items) => items.iter().for_each(|e| self.expr(e)),
            ast::ExprKind::Path(ids) => ids.iter().for_each(|i| self.ident(i)),
            ast::ExprKind::Call { func, args } => {
                self.ident(func);
                args.iter().for_each(|e| self.expr(e));
            }
            ast::ExprKind::Lookup { table, keys } => {
                self.ident(table);
                keys.iter().for_each(|e| self.expr(e));
            }
            ast::ExprKind::Unary { operand, .. } => self.expr(operand),
            ast::ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ast::ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.expr(then);
                self.expr(otherwise);
            }
            ast::ExprKind::Match { scrutinee, arms } => {
                self.expr(scrutinee);
                for arm in arms {
                    self.push(Kind::MatchArm, arm.span);
                    arm.patterns.iter().for_each(|p| self.literal(p));
                    self.expr(&arm.body);
                }
            }
            ast::ExprKind::When { arms, otherwise } => {
                for arm in arms {
                    self.push(Kind::WhenArm, arm.span);
                    self.expr(&arm.condition);
                    self.expr(&arm.body);
                }
                if let Some(o) = otherwise {
                    self.expr(o);
                }
            }
            ast::ExprKind::Paren(inner) => self.expr(inner),
        }
    }

    fn settings(&mut self, settings: &[ast::Setting]) {
        for s in settings {
            self.push(Kind::Setting, s.key.span.to(s.value_span));
            self.ident(&s.key);
        }
    }

    fn block(&mut self, span: Span) {
        self.push(Kind::PipelineBlock, span);
        self.items.push(span.range());
    }

    fn pipeline(&mut self, p: &ast::PipelineDecl) {
        self.ident(&p.name);
        self.ident(&p.policy);
        for data in &p.data {
            self.block(data.span);
            for source in &data.sources {
                self.ident(&source.name);
                for rule in &source.clean {
                    if let ast::CleanRule::DropWhen {
                        name, condition, ..
                    } = rule
                    {
                        self.ident(name);
                        self.expr(condition);
                    }
                }
            }
            for s in &data.synthetic {
                self.ident(&s.from);
                self.settings(&s.settings);
            }
            for split in &data.splits {
                self.numbers.push((split.validation_span.range(), true));
            }
        }
        for t in &p.teachers {
            self.block(t.span);
            self.ident(&t.name);
            self.models(&t.model);
            self.settings(&t.train);
            t.predicts.iter().for_each(|i| self.ident(i));
        }
        for s in &p.students {
            self.block(s.span);
            self.models(&s.model);
            self.settings(&s.regularize);
            self.settings(&s.train);
            for d in &s.distill {
                self.ident(&d.teacher);
                self.numbers.push((d.weight_span.range(), false));
            }
        }
        p.quantize.iter().for_each(|q| self.block(q.span));
        for m in &p.monitors {
            self.block(m.span);
            m.alerts.iter().for_each(|a| self.ident(&a.metric));
        }
    }

    fn models(&mut self, models: &[ast::ModelSpec]) {
        for m in models {
            if let ast::ModelSpec::Encoder { settings, .. } = m {
                self.settings(settings);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum TreeEdit {
    /// Replace a node with the text of another node of the same kind.
    Replace(Index, Index, Index),
    DeleteItem(Index),
    DuplicateItem(Index),
    SwapItems(Index, Index),
    Number(Index, Index),
    Rename(Index, Index),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        6 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(k, a, b)| TreeEdit::Replace(k, a, b)),
        1 => any::<Index>().prop_map(TreeEdit::DeleteItem),
        1 => any::<Index>().prop_map(TreeEdit::DuplicateItem),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TreeEdit::SwapItems(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TreeEdit::Number(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TreeEdit::Rename(a, b)),
    ]
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "0.5",
    "2",
    "-1",
    "100",
    "0.30",
    "1e999",
    "1e-300",
    "0.0000001",
    "123456789012345678901234567890",
    "3.5",
    "1e308",
];
const PERCENTS: &[&str] = &[
    "0%", "1%", "5%", "50%", "100%", "150%", "-10%", "33.5%", "0.5%", "99.99%", "1000000%",
];
const FRESH_NAMES: &[&str] = &[
    "x",
    "zzz_unknown",
    "score",
    "overall",
    "query",
    "candidate",
    "Seniority",
    "len",
    "missing",
    "number",
    "set",
    "grade",
    "abstain",
];

fn splice(text: &str, mut changes: Vec<(Range<usize>, String)>) -> String {
    changes.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (range, with) in changes {
        out.replace_range(range, &with);
    }
    out
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Applies one edit to a parsed text; `None` when the edit has nothing to act on.
fn apply_tree_edit(text: &str, nodes: &Nodes, edit: &TreeEdit) -> Option<(String, String)> {
    let snippet = |r: &Range<usize>| text[r.clone()].to_string();
    let short = |r: &Range<usize>| shown(&text[r.clone()]);
    match edit {
        TreeEdit::Replace(k, a, b) => {
            let kinds: Vec<_> = nodes
                .by_kind
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .collect();
            if kinds.is_empty() {
                return None;
            }
            let (kind, spans) = kinds[k.index(kinds.len())];
            let (a, b) = (&spans[a.index(spans.len())], &spans[b.index(spans.len())]);
            let log = format!(
                "replace {kind:?} {} at {}..{} with {}",
                short(a),
                a.start,
                a.end,
                short(b)
            );
            Some((splice(text, vec![(a.clone(), snippet(b))]), log))
        }
        TreeEdit::DeleteItem(i) => {
            let r = nodes.items.get(i.index(nodes.items.len().max(1)))?;
            Some((
                splice(text, vec![(r.clone(), String::new())]),
                format!("delete item {}", short(r)),
            ))
        }
        TreeEdit::DuplicateItem(i) => {
            let r = nodes.items.get(i.index(nodes.items.len().max(1)))?;
            let copy = format!("{}\n  {}", snippet(r), snippet(r));
            Some((
                splice(text, vec![(r.clone(), copy)]),
                format!("duplicate item {}", short(r)),
            ))
        }
        TreeEdit::SwapItems(a, b) => {
            let n = nodes.items.len().max(1);
            let (a, b) = (nodes.items.get(a.index(n))?, nodes.items.get(b.index(n))?);
            if overlaps(a, b) {
                return None;
            }
            let log = format!("swap items {} and {}", short(a), short(b));
            Some((
                splice(text, vec![(a.clone(), snippet(b)), (b.clone(), snippet(a))]),
                log,
            ))
        }
        TreeEdit::Number(i, v) => {
            let (r, percent) = nodes.numbers.get(i.index(nodes.numbers.len().max(1)))?;
            let pool = if *percent { PERCENTS } else { NUMBERS };
            let new = pool[v.index(pool.len())];
            let log = format!("number {} at {}..{} to {new}", short(r), r.start, r.end);
            Some((splice(text, vec![(r.clone(), new.to_string())]), log))
        }
        TreeEdit::Rename(i, name) => {
            let ids = &nodes.identifiers;
            let r = ids.get(i.index(ids.len().max(1)))?;
            // Mostly another name of the same file, so that it often resolves to something else.
            let pick = name.index(ids.len() + FRESH_NAMES.len());
            let new = ids
                .get(pick)
                .map_or_else(|| FRESH_NAMES[pick - ids.len()].to_string(), snippet);
            let log = format!("rename {} at {}..{} to {new}", short(r), r.start, r.end);
            Some((splice(text, vec![(r.clone(), new)]), log))
        }
    }
}

fn parse(text: &str) -> Option<ast::SourceTree> {
    syntax::parse(FileId(0), text, &Limits::default()).tree
}

/// Applies the edits one after the other, re-parsing in between; stops early when a mutant no
/// longer parses.
fn tree_mutant(original: &Original, edits: &[TreeEdit]) -> Mutant {
    let mut text = original.text.clone();
    let mut log = Vec::new();
    for edit in edits {
        let Some(tree) = catching(|| parse(&text)).ok().flatten() else {
            break;
        };
        let nodes = Nodes::of(&tree);
        if let Some((next, what)) = apply_tree_edit(&text, &nodes, edit) {
            text = next;
            log.push(what);
        }
    }
    Mutant {
        file: original.name.clone(),
        edits: log,
        text,
    }
}

#[test]
fn every_original_parses_and_has_nodes_of_every_kind() {
    let mut seen = BTreeMap::new();
    for original in originals() {
        let tree =
            parse(&original.text).unwrap_or_else(|| panic!("{} does not parse", original.name));
        let nodes = Nodes::of(&tree);
        assert!(
            !nodes.items.is_empty() && !nodes.identifiers.is_empty(),
            "{}",
            original.name
        );
        for (kind, spans) in nodes.by_kind {
            for r in &spans {
                assert!(
                    original.text.get(r.clone()).is_some(),
                    "{}: {kind:?} {r:?}",
                    original.name
                );
            }
            *seen.entry(kind).or_insert(0) += spans.len();
        }
    }
    println!("nodes by kind: {seen:?}");
    assert_eq!(seen.len(), 12, "some kind of node is never found: {seen:?}");
}

#[test]
fn tree_level_mutants_never_crash_the_checker_and_mostly_parse() {
    let originals = originals();
    let parsed = Cell::new(0u32);
    let total = Cell::new(0u32);
    let codes = RefCell::new(BTreeMap::<&'static str, u32>::new());
    let strategy = (any::<Index>(), prop::collection::vec(tree_edit(), 1..=2));
    let result = runner(1000, 2).run(&strategy, |(file, edits)| {
        let original = &originals[file.index(originals.len())];
        let mutant = tree_mutant(original, &edits);
        let checked = examine(original, &mutant)?;
        total.set(total.get() + 1);
        parsed.set(parsed.get() + u32::from(checked.tree.is_some()));
        for d in &checked.diagnostics {
            *codes.borrow_mut().entry(d.code.as_str()).or_default() += 1;
        }
        Ok(())
    });
    report(result);
    let rate = f64::from(parsed.get()) / f64::from(total.get().max(1));
    println!(
        "tree level: {} of {} mutants parse ({:.0}%)",
        parsed.get(),
        total.get(),
        100.0 * rate
    );
    println!("tree level: diagnostics by code: {:?}", codes.borrow());
    assert!(
        rate >= 0.5,
        "only {:.0}% of tree-level mutants parse",
        100.0 * rate
    );
}

// ---------------------------------------------------------------------------------------------
// Determinism

#[test]
fn checking_a_mutant_twice_gives_the_same_diagnostics() {
    let originals = originals();
    let strategy = (
        any::<Index>(),
        any::<bool>(),
        prop::collection::vec(token_edit(), 1..=2),
        prop::collection::vec(tree_edit(), 1..=2),
    );
    let result = runner(120, 3).run(&strategy, |(file, tree_level, token_edits, tree_edits)| {
        let original = &originals[file.index(originals.len())];
        let mutant = if tree_level {
            tree_mutant(original, &tree_edits)
        } else {
            token_mutant(original, &token_edits)
        };
        let first = check(&mutant.text).map_err(|p| fail(&mutant, &p))?;
        let second = check(&mutant.text).map_err(|p| fail(&mutant, &p))?;
        if first.diagnostics != second.diagnostics {
            let mut problem = String::from("two checks gave different diagnostics:\n");
            for (a, b) in first
                .diagnostics
                .iter()
                .zip(&second.diagnostics)
                .filter(|(a, b)| a != b)
            {
                let _ = writeln!(problem, "  first:  {a:?}\n  second: {b:?}");
            }
            let _ = writeln!(
                problem,
                "  ({} vs {} diagnostics)",
                first.diagnostics.len(),
                second.diagnostics.len()
            );
            return Err(fail(&mutant, &problem));
        }
        if first.tree != second.tree {
            return Err(fail(&mutant, "two checks gave different trees"));
        }
        Ok(())
    });
    report(result);
}
