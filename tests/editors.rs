#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Editor support (`editors/vscode/`): the extension's manifest and language configuration are
//! valid, every regex of the TextMate grammar compiles (fancy-regex reads Oniguruma's
//! look-around), and every keyword of `grammar/policy.pest` is highlighted as a keyword, so a
//! keyword added to the language without its highlighting fails here.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn grammar() -> Value {
    json(&root().join("editors/vscode/syntaxes/rubric.tmLanguage.json"))
}

/// The keywords of the language: the atomic `k_*` rules of the pest grammar, as the compiler
/// lists them (its own test checks the list against the grammar).
fn keywords() -> Vec<String> {
    let found: Vec<String> = rubric_compiler::syntax::KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert!(
        found.len() > 80,
        "the grammar's keywords were not found: {found:?}"
    );
    found
}

/// One pattern of the grammar, flattened out of `include`s, in TextMate's order.
struct Pattern {
    regex: fancy_regex::Regex,
    /// The scope of the whole match, or of each capture group.
    name: Option<String>,
    captures: Vec<(usize, String)>,
}

fn flatten(grammar: &Value, patterns: &Value, out: &mut Vec<Pattern>) {
    for p in patterns.as_array().unwrap() {
        if let Some(include) = p.get("include").and_then(Value::as_str) {
            let key = include.trim_start_matches('#');
            let rule = &grammar["repository"][key];
            assert!(!rule.is_null(), "`{include}` names no repository rule");
            flatten(grammar, &rule["patterns"], out);
            continue;
        }
        let source = p
            .get("match")
            .or_else(|| p.get("begin"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a pattern without match or begin: {p}"));
        let captures = p
            .get("captures")
            .or_else(|| p.get("beginCaptures"))
            .and_then(Value::as_object)
            .map(|c| {
                c.iter()
                    .map(|(k, v)| (k.parse().unwrap(), v["name"].as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Pattern {
            regex: fancy_regex::Regex::new(source).unwrap(),
            name: p.get("name").and_then(Value::as_str).map(str::to_string),
            captures,
        });
    }
}

/// The scope TextMate gives the first token of `line`: of the patterns, the one whose match
/// starts first (the earlier pattern on a tie); `None` when nothing matches at the start.
fn first_token_scope(patterns: &[Pattern], line: &str) -> Option<(String, usize)> {
    let mut best: Option<(usize, &Pattern, fancy_regex::Captures<'_, str>)> = None;
    for p in patterns {
        if let Some(c) = p.regex.captures(line).unwrap() {
            let start = c.get(0).unwrap().start();
            if best.as_ref().is_none_or(|(s, _, _)| start < *s) {
                best = Some((start, p, c));
            }
        }
    }
    let (start, p, c) = best?;
    if start != 0 {
        return None;
    }
    for (group, name) in &p.captures {
        if let Some(m) = c.get(*group)
            && m.start() == 0
        {
            return Some((name.clone(), m.end()));
        }
    }
    Some((p.name.clone()?, c.get(0).unwrap().end()))
}

/// Every regex anywhere in the grammar, with where it is.
fn regexes(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{k}");
                match (k.as_str(), v) {
                    ("match" | "begin" | "end" | "while", Value::String(s)) => {
                        out.push((here, s.clone()))
                    }
                    _ => regexes(v, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                regexes(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_regex_of_the_grammar_compiles() {
    let mut found = Vec::new();
    regexes(&grammar(), "", &mut found);
    assert!(found.len() > 20, "{found:?}");
    for (at, source) in found {
        if let Err(e) = fancy_regex::Regex::new(&source) {
            panic!("{at}: `{source}` does not compile: {e}");
        }
    }
}

#[test]
fn every_keyword_of_the_language_is_highlighted_as_a_keyword() {
    let grammar = grammar();
    assert_eq!(grammar["scopeName"], "source.rubric");
    let mut patterns = Vec::new();
    flatten(&grammar, &grammar["patterns"], &mut patterns);
    let mut missing = Vec::new();
    for keyword in keywords() {
        match first_token_scope(&patterns, &keyword) {
            Some((scope, end)) if scope.starts_with("keyword.") && end == keyword.len() => {}
            other => missing.push(format!("`{keyword}` gets {other:?}")),
        }
        // Not inside a longer name.
        let longer = format!("{keyword}_x");
        if let Some((scope, end)) = first_token_scope(&patterns, &longer)
            && scope.starts_with("keyword.")
            && end < longer.len()
        {
            missing.push(format!(
                "`{longer}` is highlighted as the keyword `{keyword}`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "keywords of grammar/policy.pest without keyword highlighting in \
         editors/vscode/syntaxes/rubric.tmLanguage.json:\n{}",
        missing.join("\n")
    );
}

#[test]
fn comments_strings_and_numbers_are_highlighted() {
    let grammar = grammar();
    let mut patterns = Vec::new();
    flatten(&grammar, &grammar["patterns"], &mut patterns);
    let scope = |line: &str| first_token_scope(&patterns, line).map(|(s, _)| s);
    assert_eq!(
        scope("/// docs").as_deref(),
        Some("comment.line.documentation.rubric")
    );
    assert_eq!(
        scope("// note").as_deref(),
        Some("comment.line.double-slash.rubric")
    );
    assert_eq!(
        scope("\"a\"").as_deref(),
        Some("string.quoted.double.rubric")
    );
    assert_eq!(
        scope("40%").as_deref(),
        Some("constant.numeric.percent.rubric")
    );
    assert_eq!(
        scope("250ms").as_deref(),
        Some("constant.numeric.duration.rubric")
    );
    assert_eq!(scope("0.85").as_deref(), Some("constant.numeric.rubric"));
    assert_eq!(
        scope("coverage(a, b)").as_deref(),
        Some("entity.name.function.rubric")
    );
}

#[test]
fn the_extension_declares_the_language_grammar_and_client() {
    let dir = root().join("editors/vscode");
    let manifest = json(&dir.join("package.json"));
    let language = &manifest["contributes"]["languages"][0];
    assert_eq!(language["id"], "rubric");
    assert_eq!(language["extensions"][0], ".policy");
    let configuration = language["configuration"].as_str().unwrap();
    let grammar = &manifest["contributes"]["grammars"][0];
    assert_eq!(grammar["language"], "rubric");
    assert_eq!(grammar["scopeName"], "source.rubric");
    assert!(dir.join(grammar["path"].as_str().unwrap()).is_file());
    assert!(
        manifest["dependencies"]["vscode-languageclient"].is_string(),
        "the client library is a declared dependency"
    );
    let main = manifest["main"].as_str().unwrap();
    let extension = std::fs::read_to_string(dir.join(main)).unwrap();
    assert!(extension.contains("vscode-languageclient/node"));
    assert!(
        extension.contains("'lsp'"),
        "the extension starts `rubric lsp`"
    );
    assert!(
        !dir.join("node_modules").exists(),
        "node_modules is not vendored"
    );

    let config = json(&dir.join(configuration));
    assert_eq!(config["comments"]["lineComment"], "//");
    let brackets: Vec<String> = config["brackets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| format!("{}{}", pair[0].as_str().unwrap(), pair[1].as_str().unwrap()))
        .collect();
    assert_eq!(brackets, ["{}", "[]", "()"]);
    assert!(config["autoClosingPairs"].as_array().unwrap().len() >= 4);
}
