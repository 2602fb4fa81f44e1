//! Random pairs drawn from a labeling program's own schema, for differential tests and
//! benchmarks: values come from the policy's literals (so tables, matches and comparisons are
//! exercised) and a few strangers, optional fields go missing, and the stream is a fixed
//! function of the seed (ChaCha8, stable across versions).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_compiler::lower::ir::{LabelingProgram, ValueType};
use serde_json::{Map, Value, json};

/// Draws pairs as JSON lines.
pub struct PairGenerator<'p> {
    program: &'p LabelingProgram,
    rng: ChaCha8Rng,
    words: Vec<String>,
    numbers: Vec<f64>,
    next_id: u64,
}

impl<'p> PairGenerator<'p> {
    pub fn new(program: &'p LabelingProgram, seed: u64) -> Self {
        let mut words: Vec<String> = program.strings.clone();
        words.extend(
            ["zz_unknown", "other", "Berlin", "berlin", "", "Ünïcode"]
                .iter()
                .map(|s| s.to_string()),
        );
        words.sort();
        words.dedup();
        let mut numbers = vec![
            0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 30.0, 100.0, 365.0, 1000.0, -1.0, 0.25,
        ];
        collect_numbers(program, &mut numbers);
        numbers.sort_by(f64::total_cmp);
        numbers.dedup();
        PairGenerator {
            program,
            rng: ChaCha8Rng::seed_from_u64(seed),
            words,
            numbers,
            next_id: 0,
        }
    }

    fn word(&mut self) -> String {
        let i = self.rng.random_range(0..self.words.len().max(1));
        self.words.get(i).cloned().unwrap_or_default()
    }

    fn value(&mut self, ty: &ValueType) -> Value {
        match ty {
            ValueType::Number => {
                if self.rng.random_bool(0.5) {
                    let i = self.rng.random_range(0..self.numbers.len().max(1));
                    json!(self.numbers.get(i).copied().unwrap_or(0.0))
                } else {
                    json!((self.rng.random_range(0.0..50.0_f64) * 100.0).round() / 100.0)
                }
            }
            ValueType::Bool => json!(self.rng.random_bool(0.5)),
            ValueType::String | ValueType::Text => json!(self.word()),
            ValueType::Enum { index } => {
                let values = self
                    .program
                    .enums
                    .get(*index as usize)
                    .map(|e| e.values.clone())
                    .unwrap_or_default();
                let i = self.rng.random_range(0..values.len().max(1));
                json!(values.get(i).cloned().unwrap_or_default())
            }
            ValueType::Set { of } | ValueType::List { of } => {
                let n = self.rng.random_range(0..6);
                Value::Array((0..n).map(|_| self.value(of)).collect())
            }
        }
    }

    /// The next pair, as one JSON object.
    pub fn pair(&mut self) -> Value {
        let mut out = Map::new();
        out.insert("id".to_string(), json!(format!("p-{:06}", self.next_id)));
        self.next_id += 1;
        for role in &self.program.roles {
            let fields = self
                .program
                .entities
                .get(role.entity as usize)
                .map(|e| e.fields.clone())
                .unwrap_or_default();
            let mut record = Map::new();
            for f in &fields {
                if f.optional && self.rng.random_bool(0.25) {
                    if self.rng.random_bool(0.5) {
                        record.insert(f.name.clone(), Value::Null);
                    }
                    continue;
                }
                let v = self.value(&f.ty);
                record.insert(f.name.clone(), v);
            }
            out.insert(role.name.clone(), Value::Object(record));
        }
        out.insert("source".to_string(), json!("synthetic"));
        Value::Object(out)
    }
}

fn collect_numbers(program: &LabelingProgram, out: &mut Vec<f64>) {
    // Numbers the policy compares against, and their neighbours: boundaries get exercised.
    let text = serde_json::to_string(&program.dimensions).unwrap_or_default()
        + &serde_json::to_string(&program.rules).unwrap_or_default()
        + &serde_json::to_string(&program.functions).unwrap_or_default();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("{\"number\":") {
        rest = rest.get(at + 10..).unwrap_or("");
        let end = rest.find('}').unwrap_or(rest.len());
        if let Ok(n) = rest.get(..end).unwrap_or("").parse::<f64>() {
            out.extend([n, n - 1.0, n + 1.0]);
        }
    }
}
