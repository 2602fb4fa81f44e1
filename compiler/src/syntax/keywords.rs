//! The language's words, written down once: every keyword of `grammar/policy.pest` (its atomic
//! `k_*` rules) and the reserved words of operators and values. The parser's "did you mean", the
//! language server's completion and the editor test read them from here.

/// Every keyword of the grammar (the `k_*` rules of `grammar/policy.pest`), in the grammar's order.
pub const KEYWORDS: &[&str] = &[
    "policy",
    "version",
    "module",
    "use",
    "entity",
    "enum",
    "pair",
    "table",
    "default",
    "fn",
    "in",
    "dimension",
    "weight",
    "let",
    "score",
    "grade",
    "when",
    "otherwise",
    "overall",
    "rule",
    "cap",
    "floor",
    "at",
    "exclude",
    "set",
    "because",
    "min_coverage",
    "example",
    "expect",
    "fires",
    "does",
    "not",
    "fire",
    "if",
    "then",
    "else",
    "match",
    "pipeline",
    "for",
    "data",
    "clean",
    "drop",
    "outliers",
    "beyond",
    "sigma",
    "above",
    "quantile",
    "duplicates",
    "on",
    "synthetic",
    "from",
    "mix",
    "split",
    "validation",
    "seed",
    "teacher",
    "student",
    "model",
    "encoder",
    "init",
    "predicts",
    "loss",
    "temperature",
    "train",
    "features",
    "reads",
    "distill",
    "learn",
    "unlabeled",
    "drift",
    "penalty",
    "tolerance",
    "rebalance",
    "every",
    "epochs",
    "against",
    "regularize",
    "early_stop",
    "patience",
    "quantize",
    "prune",
    "heads",
    "below",
    "monitor",
    "alert",
];

/// The reserved words that are operators or values rather than `k_*` keywords.
pub const VALUE_WORDS: &[&str] = &["and", "or", "true", "false", "abstain"];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const GRAMMAR: &str = include_str!("../../../grammar/policy.pest");

    #[test]
    fn the_keywords_are_the_grammars_k_rules() {
        let from_grammar: Vec<&str> = GRAMMAR
            .lines()
            .filter(|l| l.starts_with("k_"))
            .map(|l| l.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(KEYWORDS, from_grammar.as_slice());
    }

    #[test]
    fn the_value_words_are_reserved_by_the_grammar() {
        let reserved = GRAMMAR
            .split("reserved =")
            .nth(1)
            .and_then(|r| r.split("~ !ident_char").next())
            .unwrap();
        for word in VALUE_WORDS {
            assert!(reserved.contains(&format!("\"{word}\"")), "{word}");
        }
    }
}
