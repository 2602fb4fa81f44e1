//! What text of a pair a model reads: the query's and the candidate's free-text fields (`text`,
//! which the rubric itself never reads), by default every one of them in declaration order, each
//! side joined into one text. The model then encodes the two as a (query, candidate) pair
//! (`rubric_ml::tokenize::encode_pairs`, truncating the longer side first).

use rubric_compiler::lower::ir::{LabelingProgram, ValueType};
use serde_json::Value;
use std::fmt;

/// A pair's records by role's name: a pair object (`{ROLE: record, ...}`, as the data stages
/// write pairs) or a query's and a candidate's records side by side ([`PairOf`]: a served
/// ranking shares its query's record among its candidates instead of copying it into each).
pub trait Records {
    fn record(&self, role: &str) -> Option<&Value>;
}

impl Records for Value {
    fn record(&self, role: &str) -> Option<&Value> {
        self.get(role)
    }
}

/// Two records under their roles' names, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct PairOf<'a> {
    pub roles: [&'a str; 2],
    pub records: [&'a Value; 2],
}

impl Records for PairOf<'_> {
    fn record(&self, role: &str) -> Option<&Value> {
        let i = self.roles.iter().position(|r| *r == role)?;
        self.records.get(i).copied()
    }
}

/// One field a model reads: the role (0 the query, 1 the candidate) and the field's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextField {
    pub role: usize,
    pub field: String,
}

/// Every `text` field of the query, then of the candidate, in declaration order.
pub fn default_text_fields(program: &LabelingProgram) -> Vec<TextField> {
    let mut out = Vec::new();
    for (role, r) in program.roles.iter().enumerate() {
        let Some(entity) = program.entities.get(r.entity as usize) else {
            continue;
        };
        for f in &entity.fields {
            if f.ty == ValueType::Text {
                out.push(TextField {
                    role,
                    field: f.name.clone(),
                });
            }
        }
    }
    out
}

/// A pair whose text cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub struct EncodeError {
    /// `query.title`, or the role when the record itself is missing.
    pub field: String,
    pub message: String,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for EncodeError {}

/// The query's text and the candidate's, each the fields' values in order, one per line
/// (missing, null and empty ones left out).
pub fn pair_texts(
    program: &LabelingProgram,
    fields: &[TextField],
    pair: &Value,
) -> Result<(String, String), EncodeError> {
    let roles: Vec<&str> = program.roles.iter().map(|r| r.name.as_str()).collect();
    texts_by_role(&roles, fields, pair)
}

/// [`pair_texts`] with the roles' names in declaration order, for a model served without its
/// policy (the card records them).
pub fn texts_by_role(
    roles: &[&str],
    fields: &[TextField],
    pair: &(impl Records + ?Sized),
) -> Result<(String, String), EncodeError> {
    let mut sides = [String::new(), String::new()];
    for f in fields {
        let role = roles.get(f.role).copied().unwrap_or("?");
        let Some(record) = pair.record(role).filter(|r| r.is_object()) else {
            return Err(EncodeError {
                field: role.to_string(),
                message: "the pair has no such record".to_string(),
            });
        };
        let text = match record.get(&f.field) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.trim(),
            Some(other) => {
                return Err(EncodeError {
                    field: format!("{role}.{}", f.field),
                    message: format!("text is a string, not {other}"),
                });
            }
        };
        if let Some(side) = sides.get_mut(f.role.min(1))
            && !text.is_empty()
        {
            if !side.is_empty() {
                side.push('\n');
            }
            side.push_str(text);
        }
    }
    let [query, candidate] = sides;
    Ok((query, candidate))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::compile::compile_file;
    use rubric_compiler::Options;
    use std::path::Path;

    fn program() -> LabelingProgram {
        compile_file(
            Path::new("../policies/job_match.policy"),
            &Options::default(),
        )
        .unwrap()
        .lowered
        .labeling
    }

    #[test]
    fn the_default_is_every_text_field_in_declaration_order() {
        let fields = default_text_fields(&program());
        let names: Vec<String> = fields
            .iter()
            .map(|f| format!("{}.{}", f.role, f.field))
            .collect();
        assert_eq!(
            names,
            ["0.title", "0.description", "1.headline", "1.summary"]
        );
    }

    /// The example's first golden pair, as the data stages hold it.
    fn first_golden_pair() -> Value {
        let golden = std::fs::read_to_string("../examples/job_match/data/golden.jsonl").unwrap();
        serde_json::from_str(golden.lines().next().unwrap()).unwrap()
    }

    #[test]
    fn a_golden_pair_gives_each_side_its_text() {
        let program = program();
        let fields = default_text_fields(&program);
        let pair = first_golden_pair();
        let (query, candidate) = pair_texts(&program, &fields, &pair).unwrap();
        let title = pair["query"]["title"].as_str().unwrap();
        assert!(query.starts_with(title), "{query}");
        assert!(query.contains(pair["query"]["description"].as_str().unwrap().trim()));
        assert!(candidate.starts_with(pair["candidate"]["headline"].as_str().unwrap()));
        // A missing field is left out; a number where text belongs is named.
        let mut edited = pair.clone();
        edited["query"].as_object_mut().unwrap().remove("title");
        let (q, _) = pair_texts(&program, &fields, &edited).unwrap();
        assert!(!q.contains(title));
        edited["candidate"]["summary"] = serde_json::json!(3);
        let err = pair_texts(&program, &fields, &edited).unwrap_err();
        assert_eq!(err.field, "candidate.summary");
    }

    /// The two records side by side read as the pair object holding them does, and a role
    /// neither holds is missing from both.
    #[test]
    fn borrowed_records_read_as_the_pair_object() {
        let program = program();
        let fields = default_text_fields(&program);
        let pair = first_golden_pair();
        let borrowed = PairOf {
            roles: ["query", "candidate"],
            records: [&pair["query"], &pair["candidate"]],
        };
        let roles = ["query", "candidate"];
        assert_eq!(
            texts_by_role(&roles, &fields, &borrowed).unwrap(),
            pair_texts(&program, &fields, &pair).unwrap()
        );
        assert_eq!(borrowed.record("query"), pair.record("query"));
        assert!(borrowed.record("employer").is_none() && pair.record("employer").is_none());
        let err = texts_by_role(&["query", "employer"], &fields, &borrowed).unwrap_err();
        assert_eq!(err.field, "employer");
    }
}
