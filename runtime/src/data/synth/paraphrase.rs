//! Optional paraphrasing of the real prose of synthetic records by a model behind an
//! OpenAI-compatible `/v1/chat/completions` endpoint (a local model server). Off unless asked
//! for; a failure is counted and the text kept as written, so no row is ever lost. The generated
//! "At a glance" paragraph is never sent: it must keep saying what the fields say.

use crate::data::golden::text::GLANCE;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// How paraphrasing went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParaphraseStats {
    pub asked: usize,
    pub paraphrased: usize,
    pub failed: usize,
    /// The first few failures' reasons.
    pub errors: Vec<String>,
}

/// Something that rewrites a text in other words.
pub trait Paraphraser {
    fn paraphrase(&mut self, text: &str) -> Result<String, String>;
}

/// A client of an OpenAI-compatible chat-completions endpoint.
pub struct HttpParaphraser {
    agent: ureq::Agent,
    url: String,
    model: String,
}

/// The instruction sent with every text.
pub const INSTRUCTION: &str = "Paraphrase the following text from a job posting or a member \
profile. Keep its meaning, every skill, tool and number exactly; do not add facts. Answer with \
the paraphrased text only.";

impl HttpParaphraser {
    /// `endpoint` is the server's base URL (`http://127.0.0.1:8000`) or the full
    /// `.../v1/chat/completions` URL.
    pub fn new(endpoint: &str, model: &str, timeout: Duration) -> Self {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        HttpParaphraser {
            agent,
            url,
            model: model.to_string(),
        }
    }
}

impl Paraphraser for HttpParaphraser {
    fn paraphrase(&mut self, text: &str) -> Result<String, String> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": INSTRUCTION},
                {"role": "user", "content": text},
            ],
        });
        let mut response = self
            .agent
            .post(&self.url)
            .send_json(&body)
            .map_err(|e| format!("{}: {e}", self.url))?;
        let answer: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("{}: the answer is not JSON: {e}", self.url))?;
        let content = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        if content.is_empty() {
            return Err(format!("{}: no `choices[0].message.content`", self.url));
        }
        Ok(content.to_string())
    }
}

/// Paraphrases the prose of every text field of a record that has a generated paragraph (the
/// paragraph itself is kept).
pub fn paraphrase_record(
    p: &mut dyn Paraphraser,
    record: &mut Map<String, Value>,
    stats: &mut ParaphraseStats,
) {
    let fields: Vec<String> = record
        .iter()
        .filter(|(_, v)| v.as_str().is_some_and(|s| s.contains(GLANCE)))
        .map(|(k, _)| k.clone())
        .collect();
    for field in fields {
        let Some(text) = record.get(&field).and_then(Value::as_str) else {
            continue;
        };
        let Some((prose, glance)) = text.split_once(GLANCE) else {
            continue;
        };
        stats.asked += 1;
        match p.paraphrase(prose) {
            Ok(new) => {
                stats.paraphrased += 1;
                let joined = format!("{new}{GLANCE}{glance}");
                record.insert(field, Value::String(joined));
            }
            Err(e) => {
                stats.failed += 1;
                if stats.errors.len() < 5 {
                    stats.errors.push(e);
                }
            }
        }
    }
}
