//! SkillSpan's real job-posting sentences (JSON lines of tokens with BIO skill and knowledge
//! tags), kept per posting: the sentences that name a skill or a piece of knowledge.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

/// The files read, relative to the SkillSpan folder.
pub const FILES: [&str; 3] = ["train.json", "dev.json", "test.json"];

#[derive(Debug)]
pub enum SkillSpanError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

impl fmt::Display for SkillSpanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillSpanError::Io { path, error } => write!(f, "`{}`: {error}", path.display()),
            SkillSpanError::Row {
                path,
                line,
                message,
            } => write!(f, "`{}`, line {line}: {message}", path.display()),
        }
    }
}

impl std::error::Error for SkillSpanError {}

#[derive(Deserialize)]
struct Sentence {
    idx: u64,
    tokens: Vec<String>,
    tags_skill: Vec<String>,
    tags_knowledge: Vec<String>,
    source: String,
}

/// One real posting: where it came from and its sentences that name skills or knowledge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    /// `train.json#12`: file and SkillSpan's posting index.
    pub id: String,
    /// `tech` or `house`.
    pub source: String,
    pub sentences: Vec<String>,
}

/// Joins tokens into a sentence: no space before closing punctuation or after opening.
fn detokenize(tokens: &[String]) -> String {
    let mut out = String::new();
    for t in tokens {
        let closes = matches!(t.as_str(), "." | "," | ";" | ":" | ")" | "!" | "?" | "%");
        if !out.is_empty() && !closes && !out.ends_with('(') {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Reads the postings of the three files, in file and index order; postings without a tagged
/// sentence are left out.
pub fn read_skillspan(dir: &Path) -> Result<Vec<Posting>, SkillSpanError> {
    let mut postings = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let io_err = |error| SkillSpanError::Io {
            path: path.clone(),
            error,
        };
        let file = std::fs::File::open(&path).map_err(io_err)?;
        let mut by_idx: BTreeMap<u64, Posting> = BTreeMap::new();
        for (i, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_err)?;
            if line.trim().is_empty() {
                continue;
            }
            let row_err = |message: String| SkillSpanError::Row {
                path: path.clone(),
                line: i as u64 + 1,
                message,
            };
            let s: Sentence = serde_json::from_str(&line).map_err(|e| row_err(format!("{e}")))?;
            if s.tags_skill.len() != s.tokens.len() || s.tags_knowledge.len() != s.tokens.len() {
                return Err(row_err(format!(
                    "{} tokens but {} skill tags and {} knowledge tags",
                    s.tokens.len(),
                    s.tags_skill.len(),
                    s.tags_knowledge.len()
                )));
            }
            let tagged = s
                .tags_skill
                .iter()
                .chain(&s.tags_knowledge)
                .any(|t| t.starts_with("B"));
            // Anonymized spans (`<ORGANIZATION>`) and fragments make poor posting text.
            let placeholders = s
                .tokens
                .iter()
                .any(|t| t.starts_with('<') && t.ends_with('>'));
            let posting = by_idx.entry(s.idx).or_insert_with(|| Posting {
                id: format!("{name}#{}", s.idx),
                source: s.source.clone(),
                sentences: Vec::new(),
            });
            if tagged && !placeholders && s.tokens.len() >= 5 {
                posting.sentences.push(detokenize(&s.tokens));
            }
        }
        postings.extend(by_idx.into_values().filter(|p| !p.sentences.is_empty()));
    }
    Ok(postings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn keeps_tagged_sentences_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"idx": 3, "tokens": ["Experience", "with", "Python", "and", "SQL", "."], "tags_skill": ["O","O","O","O","O","O"], "tags_knowledge": ["O","O","B","O","B","O"], "source": "tech"}
{"idx": 3, "tokens": ["Apply", "now"], "tags_skill": ["O","O"], "tags_knowledge": ["O","O"], "source": "tech"}"#;
        for f in FILES {
            std::fs::write(dir.path().join(f), good).unwrap();
        }
        let p = read_skillspan(dir.path()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].id, "train.json#3");
        assert_eq!(p[0].sentences, vec!["Experience with Python and SQL."]);
        std::fs::write(
            dir.path().join("dev.json"),
            format!("{good}\n{{\"idx\": 1, \"tokens\": [\"a\"], \"tags_skill\": [], \"tags_knowledge\": [\"O\"], \"source\": \"tech\"}}\n"),
        )
        .unwrap();
        let e = read_skillspan(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("dev.json`, line 3: 1 tokens but 0 skill tags"),
            "{e}"
        );
    }
}
