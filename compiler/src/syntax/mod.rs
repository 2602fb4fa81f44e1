//! Parsing: policy text → typed syntax tree with spans. Owns the pest grammar binding, the one
//! place pest errors become diagnostics, the limits (size, nesting) checked before pest runs, and
//! recovery at item boundaries so one run reports the syntax errors of every item.

pub mod ast;
mod build;
pub(crate) mod expr;
mod keywords;
mod scan;

pub use keywords::{KEYWORDS, VALUE_WORDS};

use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span};
use ast::{Comment, SourceTree};
use pest::Parser;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/policy.pest"]
pub(crate) struct PolicyParser;

/// Bounds past which input is refused with a diagnostic instead of being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest policy file, in bytes.
    pub max_file_bytes: usize,
    /// Deepest nesting of brackets, branches and operators.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 1024 * 1024,
            max_depth: 256,
        }
    }
}

/// The result of parsing one file: the tree when there was no syntax error, and the diagnostics.
#[derive(Debug)]
pub struct Parsed {
    pub tree: Option<SourceTree>,
    pub diagnostics: Diagnostics,
}

/// Stack that parsing and checking at the nesting limit may need (an unoptimized build uses
/// several kilobytes a level): every parse and check runs on a fresh stack of this size, mapped
/// lazily, so a caller's small stack (a 2 MiB test thread) never overflows.
pub(crate) const STACK_SIZE: usize = 64 * 1024 * 1024;

/// Parses one file. Never panics; every problem is a diagnostic.
pub fn parse(file: FileId, text: &str, limits: &Limits) -> Parsed {
    stacker::grow(STACK_SIZE, || parse_on_stack(file, text, limits))
}

fn parse_on_stack(file: FileId, text: &str, limits: &Limits) -> Parsed {
    let mut diagnostics = Diagnostics::new();
    if text.len() > limits.max_file_bytes {
        diagnostics.push(
            Diagnostic::new(
                Code::SyntaxTooLarge,
                format!(
                    "this file is {} bytes, more than the limit of {} bytes",
                    text.len(),
                    limits.max_file_bytes
                ),
            )
            .at(Span::new(file, 0, 0), "the file starts here")
            .help("split the policy into modules (`module a.b { ... }` imported with `use`)"),
        );
        return Parsed {
            tree: None,
            diagnostics,
        };
    }

    let scanned = scan::scan(text, limits.max_depth);
    let segments = scan::segments(text, &scanned.tokens);
    if !segments.iter().any(|s| s.kind == scan::SegmentKind::Header)
        && let Some(first) = segments.first()
    {
        // No policy, module or pipeline at all (random text, a file of another language): one
        // error, not one per stray token and unbalanced bracket.
        let run = StrayRun {
            first: *first,
            more: segments.len() - 1,
            last_start: segments.last().map_or(first.start, |s| s.start),
        };
        diagnostics.push(run.diagnostic(file, text, false, &mut LineCursor::default()));
        return Parsed {
            tree: None,
            diagnostics,
        };
    }
    for problem in &scanned.problems {
        diagnostics.push(problem.to_diagnostic(file));
    }
    let comments = scanned
        .comments
        .iter()
        .map(|(start, end)| Comment {
            text: text.get(*start..*end).unwrap_or("").to_string(),
            span: Span::new(file, *start, *end),
        })
        .collect::<Vec<_>>();

    if scanned.problems.is_empty() {
        match PolicyParser::parse(Rule::file, text) {
            Ok(mut pairs) => {
                let mut builder = build::Builder::new(file, 0, limits.max_depth);
                let items = pairs.next().map(|p| builder.file(p)).unwrap_or_default();
                diagnostics.extend(builder.finish());
                let tree = SourceTree { items, comments };
                return Parsed {
                    tree: (!diagnostics.has_errors()).then_some(tree),
                    diagnostics,
                };
            }
            Err(_) => {
                // Fall through to item-by-item parsing, which reports each item's error.
            }
        }
    }
    recover(file, text, limits, &scanned, &segments, &mut diagnostics);
    Parsed {
        tree: None,
        diagnostics,
    }
}

/// Re-parses each item on its own so that an error in one item does not hide errors in others.
fn recover(
    file: FileId,
    text: &str,
    limits: &Limits,
    scanned: &scan::Scanned,
    segments: &[scan::Segment],
    diagnostics: &mut Diagnostics,
) {
    let mut reported = false;
    // Stray tokens in a row between blocks are reported once, at the first.
    let mut strays: Option<StrayRun> = None;
    let mut lines = LineCursor::default();
    for &segment in segments {
        if segment.kind != scan::SegmentKind::Stray
            && let Some(run) = strays.take()
        {
            diagnostics.push(run.diagnostic(file, text, true, &mut lines));
        }
        // Its bracket, string or nesting problem is reported already; pest would only echo it.
        if scanned.problems.iter().any(|p| segment.contains(p.offset)) {
            continue;
        }
        let Some(slice) = text.get(segment.start..segment.end) else {
            continue;
        };
        if slice.trim().is_empty() {
            continue;
        }
        let rule = match segment.kind {
            scan::SegmentKind::Header => Rule::top_header_alone,
            scan::SegmentKind::PolicyItem => Rule::policy_item_alone,
            scan::SegmentKind::PipelineItem => Rule::pipeline_item_alone,
            scan::SegmentKind::Stray => {
                match &mut strays {
                    Some(run) => {
                        run.more += 1;
                        run.last_start = segment.start;
                    }
                    None => {
                        strays = Some(StrayRun {
                            first: segment,
                            more: 0,
                            last_start: segment.start,
                        });
                    }
                }
                reported = true;
                continue;
            }
        };
        match PolicyParser::parse(rule, slice) {
            Ok(pairs) => {
                let mut builder = build::Builder::new(file, segment.start, limits.max_depth);
                for pair in pairs {
                    builder.alone(pair);
                }
                let found = builder.finish();
                reported |= found.has_errors();
                diagnostics.extend(found);
            }
            Err(error) => {
                diagnostics.push(from_pest(
                    file,
                    text,
                    segment.start,
                    &error,
                    Some(segment.kind),
                ));
                reported = true;
            }
        }
    }
    if let Some(run) = strays {
        diagnostics.push(run.diagnostic(file, text, true, &mut lines));
    }
    if !reported && !diagnostics.has_errors() {
        // Every item parses on its own, yet the whole file does not: the items are in the wrong
        // place (for example a dimension outside any policy). Report the whole-file error.
        if let Err(error) = PolicyParser::parse(Rule::file, text) {
            diagnostics.push(from_pest(file, text, 0, &error, None));
        }
    }
}

/// One-based line numbers of offsets asked for in increasing order, counted once.
#[derive(Default)]
struct LineCursor {
    offset: usize,
    line: usize,
}

impl LineCursor {
    fn line_of(&mut self, text: &str, offset: usize) -> usize {
        if offset < self.offset {
            *self = Self::default();
        }
        let newlines = text
            .get(self.offset..offset)
            .map_or(0, |t| t.bytes().filter(|b| *b == b'\n').count());
        self.offset = offset;
        self.line += newlines;
        self.line + 1
    }
}

/// Tokens outside any block, in a row: the first, how many follow it, and where the last starts.
struct StrayRun {
    first: scan::Segment,
    more: usize,
    last_start: usize,
}

impl StrayRun {
    /// The one diagnostic of the run; `blocks` says whether the file has any block at all.
    fn diagnostic(
        &self,
        file: FileId,
        text: &str,
        blocks: bool,
        lines: &mut LineCursor,
    ) -> Diagnostic {
        let start = self.first.start;
        let token = scan::token_at(text, start);
        let end = self.first.end.min(start + token_len(text, start));
        let message = if blocks {
            format!("unexpected {token} outside a policy, module or pipeline")
        } else {
            format!("unexpected {token}: this file holds no policy, module or pipeline")
        };
        let label = match self.more {
            0 => "not inside any block".to_string(),
            more => {
                let line = lines.line_of(text, self.last_start);
                let tokens = if more == 1 { "token" } else { "tokens" };
                format!(
                    "not inside any block, nor are the {more} {tokens} after it (to line {line})"
                )
            }
        };
        let help = if blocks {
            "every item belongs inside `policy NAME version N { ... }`, `module a.b { ... }` or `pipeline NAME for POLICY { ... }`"
        } else {
            "a policy file holds one `policy NAME version N { ... }`, `module a.b { ... }` or `pipeline NAME for POLICY { ... }`; `rubric new NAME` writes one to start from"
        };
        Diagnostic::new(Code::SyntaxUnexpected, message)
            .at(Span::new(file, start, end), label)
            .help(help)
    }
}

fn token_len(text: &str, at: usize) -> usize {
    let rest = text.get(at..).unwrap_or("");
    let word = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    }
}

/// The one place a pest error becomes a diagnostic, with the expected tokens in words.
fn from_pest(
    file: FileId,
    text: &str,
    base: usize,
    error: &pest::error::Error<Rule>,
    segment: Option<scan::SegmentKind>,
) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let offset = scan::skip_trivia(
        text,
        base + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        },
    );
    // Parsing may stop inside `&&` or `||`, after the first character: show the operator whole.
    let doubled = ["&&", "||"]
        .into_iter()
        .find(|op| offset > 0 && text.get(offset - 1..).is_some_and(|t| t.starts_with(op)));
    let (token, span) = match doubled {
        Some(op) => (format!("`{op}`"), Span::new(file, offset - 1, offset + 1)),
        None => {
            let len = token_len(text, offset).max(if offset >= text.len() { 0 } else { 1 });
            (
                scan::token_at(text, offset),
                Span::new(file, offset, (offset + len).min(text.len())),
            )
        }
    };
    let mut expected: Vec<&'static str> = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| describe(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    if expected.iter().any(|e| *e == "`if`" || *e == "`match`") {
        // The start of an expression: say so once instead of listing every way to begin one.
        const STARTS: &[&str] = &[
            "`(`",
            "`[`",
            "`if`",
            "`match`",
            "`when`",
            "`true` or `false`",
            "a number",
            "a percent, like `40%`",
            "a string in double quotes",
            "a duration like `20ms`",
            "a name",
            "an expression",
        ];
        expected.retain(|e| !STARTS.contains(e));
        expected.insert(0, "an expression");
    }
    if expected == ["end of file"] {
        // An item parsed on its own ended early: what may follow is another item or the `}`.
        match segment {
            Some(scan::SegmentKind::PolicyItem) => {
                expected = vec!["an item (dimension, entity, rule, ...)", "`}`"];
            }
            Some(scan::SegmentKind::PipelineItem) => {
                expected = vec![
                    "a pipeline block (`data`, `teacher`, `student`, `quantize`, `monitor`)",
                    "`}`",
                ];
            }
            _ => {}
        }
    }
    expected.sort_unstable();
    expected.dedup();
    let label = match expected.len() {
        0 => "not expected here".to_string(),
        1..=6 => format!("expected {}", words(&expected)),
        _ => format!(
            "expected {}, or one of {} other things",
            words(&expected[..5]),
            expected.len() - 5
        ),
    };
    let mut diagnostic =
        Diagnostic::new(Code::SyntaxUnexpected, format!("unexpected {token}")).at(span, label);
    if expected.contains(&"`else`")
        && let Some((at, c)) = text.get(..offset).and_then(|before| {
            before
                .char_indices()
                .rev()
                .find(|(_, c)| !c.is_whitespace())
        })
    {
        // What is missing belongs after the `if`'s last word, often on the line before.
        let end = Span::new(file, at, at + c.len_utf8());
        diagnostic = diagnostic.with(end, "the `else` and its value go after this");
    }
    // A keyword is suggested for a word of three letters or more: `if` is not a typo of `mix`.
    let misspelled = token
        .strip_prefix('`')
        .and_then(|t| t.strip_suffix('`'))
        .filter(|word| word.chars().count() >= 3)
        .and_then(|word| crate::diagnostics::did_you_mean(word, KEYWORDS.iter().copied()));
    if let Some(help) = text
        .get(span.start as usize..)
        .and_then(|rest| other_languages(rest, &expected))
    {
        diagnostic = diagnostic.help(help);
    } else if let Some(best) = misspelled {
        diagnostic = diagnostic.help(format!("did you mean `{best}`?"));
    } else if let Some(help) = hint(&expected, &token) {
        diagnostic = diagnostic.help(help);
    }
    diagnostic
}

/// A help line for what authors bring from other languages and word processors, read from the
/// text where parsing stopped: `&&`, `||`, `!`, `#` comments, curly quotes, and `if` where a
/// rule's `when` goes.
fn other_languages(rest: &str, expected: &[&str]) -> Option<String> {
    let starts_word = |w: &str| {
        rest.strip_prefix(w)
            .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let help = if rest.starts_with("&&") {
        "to require both conditions, write `and`: `a and b`"
    } else if rest.starts_with("||") {
        "to accept either condition, write `or`: `a or b`"
    } else if rest.starts_with('!') && !rest.starts_with("!=") {
        "to negate a condition, write `not`: `not c`"
    } else if rest.starts_with('#') {
        "comments start with `//` (and doc comments with `///`), not `#`"
    } else if rest.starts_with(['\u{201c}', '\u{201d}']) {
        "strings are in straight double quotes, `\"...\"`: an editor or word processor turned them into curly quotes `\u{201c} \u{201d}`"
    } else if rest.starts_with(['\u{2018}', '\u{2019}']) {
        "strings are in straight double quotes, `\"...\"`, not curly single quotes `\u{2018} \u{2019}`"
    } else if rest.starts_with(|c: char| !c.is_ascii() && c.is_alphabetic()) {
        "names are ASCII letters, digits and `_`: write this name without accents or other \
         scripts (`größe` as `groesse`); text in strings and `///` comments can be any language"
    } else if starts_word("if") && expected.contains(&"`when`") {
        "a rule's condition starts with `when`: `when c`; `if` chooses between values, `if c then a else b`"
    } else {
        return None;
    };
    Some(help.to_string())
}

fn words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// A help line for the syntax errors authors make most.
fn hint(expected: &[&str], token: &str) -> Option<String> {
    let has = |w: &str| expected.contains(&w);
    if token.starts_with("`=`") && has("a comparison operator") {
        return Some("to compare, write `==`".to_string());
    }
    if has("`else`") {
        return Some("every `if` needs an `else`: `if c then a else b`".to_string());
    }
    if expected == ["a percent, like `40%`"] {
        return Some("weights and shares are percents, like `weight 40%`".to_string());
    }
    if has("`because`") {
        return Some("a rule ends with its reason: `because \"...\"`".to_string());
    }
    if token == "end of file" && has("`}`") {
        return Some("a `{` earlier in the file is never closed".to_string());
    }
    if has("an item (dimension, entity, rule, ...)") {
        return Some(
            "a policy holds `use`, `entity`, `enum`, `pair`, `table`, `fn`, `dimension`, `rule`, `grade overall`, `example` and `min_coverage`"
                .to_string(),
        );
    }
    None
}

/// Names the rules pest expected, in words a product manager reads. `None` hides a rule.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule as R;
    Some(match rule {
        R::EOI => "end of file",
        R::policy | R::policy_header | R::k_policy => "`policy`",
        R::module | R::module_header | R::k_module => "`module`",
        R::pipeline | R::pipeline_header | R::k_pipeline => "`pipeline`",
        R::doc => "a doc comment (`///`)",
        R::use_decl
        | R::entity_decl
        | R::enum_decl
        | R::pair_decl
        | R::table_decl
        | R::fn_decl
        | R::dimension_decl
        | R::rule_decl
        | R::overall_grade
        | R::example_decl
        | R::min_coverage_decl => "an item (dimension, entity, rule, ...)",
        R::data_block
        | R::teacher_block
        | R::student_block
        | R::quantize_block
        | R::monitor_block => {
            "a pipeline block (`data`, `teacher`, `student`, `quantize`, `monitor`)"
        }
        R::module_path => "a module path like `std.text`",
        R::import_name => "an imported name",
        R::field_decl => "a field like `skills: set<string>`",
        R::type_expr => "a type",
        R::type_args => "`<`",
        R::optional_mark => "`?`",
        R::variant => "an enum value",
        R::variant_sep => "`,` or `<`",
        R::role => "a role like `query: Job`",
        R::table_keys => "the key types",
        R::table_entry => "a table entry like `(\"a\", \"b\"): 0.5`",
        R::table_key => "a table key",
        R::param => "a parameter like `x: number`",
        R::declared_range => "`in [lo, hi]`",
        R::let_stmt => "`let`",
        R::score_stmt => "`score`",
        R::grade_block => "`grade`",
        R::band => "a grade band like `strong when score >= 0.8`",
        R::band_when => "`when`",
        R::band_otherwise => "`otherwise`",
        R::cap_action | R::floor_action | R::exclude_action | R::set_grade_action => {
            "a rule action (`cap`, `floor`, `exclude` or `set grade`)"
        }
        R::because => "`because`",
        R::example_record => "a record like `query { ... }`",
        R::record => "`{`",
        R::record_field => "a field like `skills: [\"rust\"]`",
        R::value_list => "a list",
        R::enum_value => "a value",
        R::expectation => "`expect`",
        R::expect_rule | R::expect_compare | R::expect_target => "what to expect",
        R::fires => "`fires`",
        R::does_not_fire => "`does not fire`",
        R::compare_op => "a comparison (`==`, `>=`, ...)",
        R::source_stmt => "a data source like `golden \"data/golden.jsonl\"`",
        R::clean_block => "`clean`",
        R::drop_when | R::drop_outliers | R::drop_duplicates => "`drop`",
        R::outlier_sigma => "`beyond`",
        R::outlier_quantile => "`above`",
        R::synthetic_stmt => "`synthetic`",
        R::mix_stmt => "`mix`",
        R::mix_share => "a share like `real 30%`",
        R::split_stmt => "`split`",
        R::model_stmt => "`model`",
        R::model_encoder => "`encoder`",
        R::model_init => "`init`",
        R::predicts_stmt => "`predicts`",
        R::loss_stmt => "`loss`",
        R::temperature => "`temperature`",
        R::train_stmt => "`train`",
        R::features_stmt => "`features`",
        R::reads_stmt => "`reads`",
        R::input_ref => "a field such as `query.title`",
        R::model_from => "`from teacher NAME`",
        R::input_list => "a list such as `[query.title, candidate.summary]`",
        R::distill_stmt => "`distill`",
        R::learn_stmt => "`learn`",
        R::drift_stmt => "`drift`",
        R::regularize_stmt => "`regularize`",
        R::early_stop_stmt => "`early_stop`",
        R::prune_stmt => "`prune`",
        R::alert_stmt => "`alert`",
        R::metric => "a metric name",
        R::settings => "`{`",
        R::setting | R::numeric_setting => "a setting like `layers 6`",
        R::expr
        | R::paren
        | R::list
        | R::call
        | R::lookup
        | R::path
        | R::if_expr
        | R::match_expr
        | R::when_expr
        | R::abstain => "an expression",
        R::not_op | R::neg => "an expression",
        R::or_op | R::and_op => "`and` or `or`",
        R::eq | R::ne | R::le | R::ge | R::lt | R::gt => "a comparison operator",
        R::coalesce | R::union | R::intersect | R::add | R::sub | R::mul | R::div => "an operator",
        R::match_arm | R::pattern | R::wildcard => "a match arm like `0 => 1.0`",
        R::when_arm => "`when`",
        R::otherwise_arm => "`otherwise`",
        R::boolean => "`true` or `false`",
        R::number | R::signed_number => "a number",
        R::integer => "a whole number",
        R::percent => "a percent, like `40%`",
        R::duration => "a duration like `20ms`",
        R::string | R::string_inner => "a string in double quotes",
        R::name | R::ident => "a name",
        R::lbrace => "`{`",
        R::rbrace => "`}`",
        R::lparen => "`(`",
        R::rparen => "`)`",
        R::lbracket => "`[`",
        R::rbracket => "`]`",
        R::comma => "`,`",
        R::colon => "`:`",
        R::fat_arrow => "`=>`",
        R::arrow => "`->`",
        R::assign => "`=`",
        R::dot => "`.`",
        R::k_version => "`version`",
        R::k_use => "`use`",
        R::k_entity => "`entity`",
        R::k_enum => "`enum`",
        R::k_pair => "`pair`",
        R::k_table => "`table`",
        R::k_default => "`default`",
        R::k_fn => "`fn`",
        R::k_in => "`in`",
        R::k_dimension => "`dimension`",
        R::k_weight => "`weight`",
        R::k_let => "`let`",
        R::k_score => "`score`",
        R::k_grade => "`grade`",
        R::k_when => "`when`",
        R::k_otherwise => "`otherwise`",
        R::k_overall => "`overall`",
        R::k_rule => "`rule`",
        R::k_cap => "`cap`",
        R::k_floor => "`floor`",
        R::k_at => "`at`",
        R::k_exclude => "`exclude`",
        R::k_set => "`set`",
        R::k_because => "`because`",
        R::k_min_coverage => "`min_coverage`",
        R::k_example => "`example`",
        R::k_expect => "`expect`",
        R::k_fires => "`fires`",
        R::k_does => "`does`",
        R::k_not => "`not`",
        R::k_fire => "`fire`",
        R::k_if => "`if`",
        R::k_then => "`then`",
        R::k_else => "`else`",
        R::k_match => "`match`",
        R::k_for => "`for`",
        R::k_data => "`data`",
        R::k_clean => "`clean`",
        R::k_drop => "`drop`",
        R::k_outliers => "`outliers`",
        R::k_beyond => "`beyond`",
        R::k_sigma => "`sigma`",
        R::k_above => "`above`",
        R::k_quantile => "`quantile`",
        R::k_duplicates => "`duplicates`",
        R::k_on => "`on`",
        R::k_synthetic => "`synthetic`",
        R::k_from => "`from`",
        R::k_mix => "`mix`",
        R::k_split => "`split`",
        R::k_validation => "`validation`",
        R::k_seed => "`seed`",
        R::k_teacher => "`teacher`",
        R::k_student => "`student`",
        R::k_model => "`model`",
        R::k_encoder => "`encoder`",
        R::k_init => "`init`",
        R::k_predicts => "`predicts`",
        R::k_loss => "`loss`",
        R::k_temperature => "`temperature`",
        R::k_train => "`train`",
        R::k_features => "`features`",
        R::k_reads => "`reads`",
        R::k_distill => "`distill`",
        R::k_learn => "`learn`",
        R::k_unlabeled => "`unlabeled`",
        R::k_drift => "`drift`",
        R::k_penalty => "`penalty`",
        R::k_tolerance => "`tolerance`",
        R::k_rebalance => "`rebalance`",
        R::k_every => "`every`",
        R::k_epochs => "`epochs`",
        R::k_against => "`against`",
        R::k_regularize => "`regularize`",
        R::k_early_stop => "`early_stop`",
        R::k_patience => "`patience`",
        R::k_quantize => "`quantize`",
        R::k_prune => "`prune`",
        R::k_heads => "`heads`",
        R::k_below => "`below`",
        R::k_monitor => "`monitor`",
        R::k_alert => "`alert`",
        R::file
        | R::policy_item_alone
        | R::pipeline_item_alone
        | R::top_header_alone
        | R::WHITESPACE
        | R::COMMENT
        | R::top_item
        | R::policy_item
        | R::path_char
        | R::dim_stmt
        | R::rule_action
        | R::score_literal
        | R::value
        | R::expect_value
        | R::pipeline_item
        | R::data_stmt
        | R::clean_rule
        | R::teacher_stmt
        | R::student_stmt
        | R::threshold
        | R::setting_value
        | R::prefix
        | R::infix
        | R::primary
        | R::pattern_atom
        | R::literal
        | R::ident_start
        | R::ident_char
        | R::reserved => return None,
    })
}
