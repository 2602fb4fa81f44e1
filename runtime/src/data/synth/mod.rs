//! Policy-guided synthesis: golden pairs perturbed along the rubric's decision boundaries
//! (thresholds, coverage ratios, counterpart fields, missing values) until every clause of the
//! policy is reached and every grade is represented; text rewritten to match, every row
//! re-labeled and marked `synthetic` with the golden pair it came from.

pub mod paraphrase;

use crate::data::golden::pairs::{ABSTAINED, PairLabeler, PairRow, content_key, grade_names};
use crate::data::golden::text;
use crate::examples::{Coverage, coverage};
use crate::label::decode::RowError;
use crate::label::engine::Engine;
use paraphrase::{ParaphraseStats, Paraphraser};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_compiler::lower::ir::{Const, FieldSchema, LabelingProgram, ValueType};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

/// How pairs are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Reach every clause first (a perturbation that exercises a clause no row has yet is
    /// always kept), then fill every overall grade to an equal share.
    Coverage,
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "coverage" => Ok(Strategy::Coverage),
            other => Err(format!(
                "unknown synthesis strategy `{other}` (known: coverage)"
            )),
        }
    }
}

#[derive(Debug)]
pub enum SynthError {
    Io(io::Error),
    Row {
        file: PathBuf,
        error: RowError,
    },
    /// Nothing to synthesize from (no golden pair outside the validation split).
    NoSources,
}

impl fmt::Display for SynthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SynthError::Io(e) => write!(f, "{e}"),
            SynthError::Row { file, error } => write!(f, "`{}`, {error}", file.display()),
            SynthError::NoSources => write!(
                f,
                "no golden pair to synthesize from outside the validation split"
            ),
        }
    }
}

impl std::error::Error for SynthError {}

impl From<io::Error> for SynthError {
    fn from(e: io::Error) -> Self {
        SynthError::Io(e)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SynthOptions {
    pub count: usize,
    pub strategy: Strategy,
    pub seed: u64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSummary {
    pub written: usize,
    pub sources: usize,
    /// Perturbed pairs labeled to choose from.
    pub tried: usize,
    pub by_grade: Vec<(String, usize)>,
    /// Perturbations applied, by operation.
    pub by_operation: BTreeMap<String, usize>,
    /// Clause coverage of the synthetic rows alone.
    pub coverage: Coverage,
    /// Labels of the clauses never reached.
    pub unreached: Vec<String>,
    pub paraphrase: Option<ParaphraseStats>,
}

/// A field of a role, for perturbing.
#[derive(Clone, Debug)]
struct Slot {
    role: String,
    field: FieldSchema,
}

/// Numbers worth trying: the policy's constants, their neighbours, and a few common values.
fn boundary_numbers(program: &LabelingProgram) -> Vec<f64> {
    let text = serde_json::to_string(&program.dimensions).unwrap_or_default()
        + &serde_json::to_string(&program.rules).unwrap_or_default()
        + &serde_json::to_string(&program.functions).unwrap_or_default();
    let mut out = vec![0.0, 1.0, 2.0, 4.0, 8.0, 12.0, 30.0];
    let mut rest = text.as_str();
    while let Some(at) = rest.find("{\"number\":") {
        rest = rest.get(at + 10..).unwrap_or("");
        let end = rest.find('}').unwrap_or(rest.len());
        if let Ok(n) = rest.get(..end).unwrap_or("").parse::<f64>() {
            out.extend([n, n - 1.0, n + 1.0]);
        }
    }
    // Records hold counts and durations: no negative values.
    out.retain(|x| *x >= 0.0 && x.is_finite());
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

struct Perturber<'p> {
    program: &'p LabelingProgram,
    slots: Vec<Slot>,
    numbers: Vec<f64>,
    /// Values each `role.field` takes in the golden pairs (for strings and optionals).
    seen: BTreeMap<String, Vec<Value>>,
    /// Key pairs of the policy's `(string, string)` tables: two records set to a listed pair
    /// reach the table's non-default values.
    table_pairs: Vec<(String, String)>,
}

fn kind_of(ty: &ValueType) -> u8 {
    match ty {
        ValueType::Number => 0,
        ValueType::Bool => 1,
        ValueType::String => 2,
        ValueType::Text => 3,
        ValueType::Enum { .. } => 4,
        ValueType::Set { .. } | ValueType::List { .. } => 5,
    }
}

impl<'p> Perturber<'p> {
    fn new(program: &'p LabelingProgram, sources: &[&PairRow]) -> Self {
        let mut slots = Vec::new();
        for role in &program.roles {
            if let Some(e) = program.entities.get(role.entity as usize) {
                for f in &e.fields {
                    if f.ty != ValueType::Text {
                        slots.push(Slot {
                            role: role.name.clone(),
                            field: f.clone(),
                        });
                    }
                }
            }
        }
        let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in sources {
            for s in &slots {
                if let Some(v) = row.value.get(&s.role).and_then(|r| r.get(&s.field.name))
                    && !v.is_null()
                {
                    let set = seen
                        .entry(format!("{}.{}", s.role, s.field.name))
                        .or_default();
                    if set.len() < 256 {
                        set.insert(v.to_string());
                    }
                }
            }
        }
        let seen = seen
            .into_iter()
            .map(|(k, vs)| {
                (
                    k,
                    vs.iter()
                        .filter_map(|v| serde_json::from_str(v).ok())
                        .collect(),
                )
            })
            .collect();
        let mut table_pairs = Vec::new();
        for t in &program.tables {
            for e in &t.entries {
                if let [Const::Str(a), Const::Str(b)] = e.keys.as_slice() {
                    let s = |i: &u32| program.strings.get(*i as usize).cloned();
                    if let (Some(a), Some(b)) = (s(a), s(b)) {
                        table_pairs.push((a, b));
                    }
                }
            }
        }
        Perturber {
            program,
            slots,
            numbers: boundary_numbers(program),
            seen,
            table_pairs,
        }
    }

    fn enum_values(&self, ty: &ValueType) -> Vec<String> {
        match ty {
            ValueType::Enum { index } => self
                .program
                .enums
                .get(*index as usize)
                .map(|e| e.values.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Fields of the other role(s) with the same kind of type (a counterpart to align with).
    fn counterparts(&self, slot: &Slot) -> Vec<&Slot> {
        // A string is aligned with the field of the same name (`location` with `location`).
        let same_name: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.role != slot.role && s.field.name == slot.field.name)
            .filter(|s| s.field.ty == slot.field.ty)
            .collect();
        if slot.field.ty == ValueType::String && !same_name.is_empty() {
            return same_name;
        }
        self.slots
            .iter()
            .filter(|s| s.role != slot.role && kind_of(&s.field.ty) == kind_of(&slot.field.ty))
            .filter(|s| match (&s.field.ty, &slot.field.ty) {
                (ValueType::Enum { index: a }, ValueType::Enum { index: b }) => a == b,
                _ => true,
            })
            .collect()
    }

    /// Applies one perturbation to `pair`; returns its description (`candidate.skills: ...`)
    /// and the role it changed.
    fn perturb(
        &self,
        pair: &mut Value,
        rng: &mut ChaCha8Rng,
    ) -> Option<(String, Vec<String>, String)> {
        let slot = self.slots.choose(rng)?.clone();
        let get = |pair: &Value, s: &Slot| -> Value {
            pair.get(&s.role)
                .and_then(|r| r.get(&s.field.name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let current = get(pair, &slot);
        let partners = self.counterparts(&slot);
        let partner = partners.choose(rng).copied();
        let path = format!("{}.{}", slot.role, slot.field.name);
        let mut also: Option<String> = None;
        let partner_path = |p: &Slot| format!("{}.{}", p.role, p.field.name);
        let (op, value, what): (&str, Value, String) =
            if slot.field.optional && rng.random_bool(0.15) {
                if current.is_null() {
                    let v = self
                        .seen
                        .get(&path)
                        .and_then(|vs| vs.choose(rng))
                        .cloned()
                        .unwrap_or(Value::Null);
                    ("restore_missing", v, "given a value".to_string())
                } else {
                    ("make_missing", Value::Null, "made missing".to_string())
                }
            } else {
                match &slot.field.ty {
                    ValueType::Number => {
                        let other = partner.and_then(|p| get(pair, p).as_f64());
                        match (other, rng.random_bool(0.5)) {
                            (Some(o), true) => {
                                let (f, d) = *[
                                    (0.0, 0.0),
                                    (0.5, 0.0),
                                    (0.7, 0.0),
                                    (0.75, 0.0),
                                    (0.9, 0.0),
                                    (1.0, 0.0),
                                    (1.0, 1.0),
                                    (1.0, 4.0),
                                    (1.0, 8.0),
                                    (1.0, 10.0),
                                    (1.5, 0.0),
                                ]
                                .choose(rng)
                                .unwrap_or(&(1.0, 0.0));
                                let v = ((o * f + d) * 100.0).round() / 100.0;
                                let p = partner.map(partner_path).unwrap_or_default();
                                (
                                    "relative_number",
                                    json!(v),
                                    format!("set to {f}×{p}+{d} = {v}"),
                                )
                            }
                            _ => {
                                let v = self.numbers.choose(rng).copied().unwrap_or(0.0);
                                ("boundary_number", json!(v), format!("set to {v}"))
                            }
                        }
                    }
                    ValueType::Bool => {
                        let v = !current.as_bool().unwrap_or(false);
                        ("flip", json!(v), format!("flipped to {v}"))
                    }
                    ValueType::Enum { .. } => {
                        let values = self.enum_values(&slot.field.ty);
                        let at = |v: &Value| {
                            v.as_str()
                                .and_then(|s| values.iter().position(|x| x == s))
                                .map(|p| p as i64)
                        };
                        let anchor = partner.and_then(|p| at(&get(pair, p)));
                        match anchor {
                            Some(a) if rng.random_bool(0.7) => {
                                let by = rng.random_range(-4i64..=4);
                                let j = (a + by).clamp(0, values.len() as i64 - 1) as usize;
                                let v = values.get(j).cloned().unwrap_or_default();
                                let p = partner.map(partner_path).unwrap_or_default();
                                (
                                    "enum_step",
                                    json!(v),
                                    format!("set {by:+} steps from {p}: `{v}`"),
                                )
                            }
                            _ => {
                                let v = values.choose(rng).cloned().unwrap_or_default();
                                ("enum_value", json!(v), format!("set to `{v}`"))
                            }
                        }
                    }
                    ValueType::String => match rng.random_range(0..4) {
                        3 if partner.is_some() && !self.table_pairs.is_empty() => {
                            // Both records set to a pair a table lists (either way round).
                            let (a, b) = self.table_pairs.choose(rng).cloned().unwrap_or_default();
                            let (a, b) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
                            let p = partner?;
                            let name = partner_path(p);
                            let record = pair.get_mut(&p.role).and_then(Value::as_object_mut)?;
                            record.insert(p.field.name.clone(), json!(b));
                            also = Some(p.role.clone());
                            (
                                "table_pair",
                                json!(a),
                                format!("set to \"{a}\" with {name} \"{b}\""),
                            )
                        }
                        0 if partner.is_some() => {
                            let p = partner.map(|p| get(pair, p)).unwrap_or(Value::Null);
                            let v = if p.is_null() { current.clone() } else { p };
                            let name = partner.map(partner_path).unwrap_or_default();
                            ("copy_counterpart", v, format!("copied from {name}"))
                        }
                        1 => {
                            let v = self
                                .program
                                .strings
                                .choose(rng)
                                .cloned()
                                .unwrap_or_default();
                            ("policy_literal", json!(v), format!("set to \"{v}\""))
                        }
                        _ => {
                            let v = self
                                .seen
                                .get(&path)
                                .and_then(|vs| vs.choose(rng))
                                .cloned()
                                .unwrap_or(current.clone());
                            ("other_value", v.clone(), format!("set to {v}"))
                        }
                    },
                    ValueType::Set { .. } | ValueType::List { .. } => {
                        let own: Vec<Value> = current.as_array().cloned().unwrap_or_default();
                        let other: Vec<Value> = partner
                            .and_then(|p| get(pair, p).as_array().cloned())
                            .unwrap_or_default();
                        match rng.random_range(0..4) {
                            0 | 1 if !other.is_empty() => {
                                // Cover a share of the counterpart's items, at the policy's thresholds.
                                let f = *[0.0, 0.25, 0.34, 0.5, 0.67, 0.75, 0.8, 1.0]
                                    .choose(rng)
                                    .unwrap_or(&0.5);
                                let take = (other.len() as f64 * f).ceil() as usize;
                                let mut v: Vec<Value> = other.iter().take(take).cloned().collect();
                                for x in &own {
                                    if !other.contains(x) && !v.contains(x) {
                                        v.push(x.clone());
                                    }
                                }
                                let name = partner.map(partner_path).unwrap_or_default();
                                (
                                    "cover_counterpart",
                                    Value::Array(v),
                                    format!("holds {take} of the {} items of {name}", other.len()),
                                )
                            }
                            2 => {
                                let n = rng.random_range(0..=3usize);
                                let v: Vec<Value> = own.iter().take(n).cloned().collect();
                                ("truncate", Value::Array(v), format!("cut to {n} items"))
                            }
                            _ => {
                                let v = self
                                    .seen
                                    .get(&path)
                                    .and_then(|vs| vs.choose(rng))
                                    .cloned()
                                    .unwrap_or(Value::Array(Vec::new()));
                                ("other_value", v, "replaced by another pair's".to_string())
                            }
                        }
                    }
                    ValueType::Text => return None,
                }
            };
        let record = pair.get_mut(&slot.role).and_then(Value::as_object_mut)?;
        if value.is_null() {
            if !slot.field.optional {
                return None;
            }
            record.remove(&slot.field.name);
        } else {
            record.insert(slot.field.name.clone(), value);
        }
        let mut roles = vec![slot.role.clone()];
        roles.extend(also);
        Some((op.to_string(), roles, format!("{path}: {what}")))
    }
}

/// `(role, field)` of every free-text field of the pair's records.
fn text_fields(program: &LabelingProgram) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for role in &program.roles {
        if let Some(e) = program.entities.get(role.entity as usize) {
            for f in &e.fields {
                if f.ty == ValueType::Text {
                    out.push((role.name.clone(), f.name.clone()));
                }
            }
        }
    }
    out
}

fn strip_text(pair: &Value, fields: &[(String, String)]) -> Value {
    let mut v = pair.clone();
    for (role, field) in fields {
        if let Some(r) = v.get_mut(role).and_then(Value::as_object_mut) {
            r.remove(field);
        }
    }
    v
}

fn restore_text(pair: &mut Value, root: &Value, fields: &[(String, String)]) {
    for (role, field) in fields {
        let text = root.get(role).and_then(|r| r.get(field)).cloned();
        if let (Some(r), Some(t)) = (pair.get_mut(role).and_then(Value::as_object_mut), text) {
            r.insert(field.clone(), t);
        }
    }
}

/// A perturbed pair, held as compact JSON (a `Value` takes several times the bytes, and tens of
/// thousands are held).
struct Candidate {
    value: String,
    /// Its content key.
    key: String,
    from: String,
    changes: Vec<String>,
    changed_roles: BTreeSet<String>,
    grade: String,
    hits: Vec<bool>,
    label: String,
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// Golden rows to synthesize from: those not in `held_out` (the validation split's ids).
pub fn sources<'r>(golden: &'r [PairRow], held_out: &BTreeSet<String>) -> Vec<&'r PairRow> {
    golden
        .iter()
        .filter(|r| !held_out.contains(r.str_field("id").unwrap_or_default()))
        .collect()
}

/// Where synthetic rows go: the pairs, and their labels when asked for.
pub struct SynthOutputs<'a> {
    pub pairs: &'a mut dyn Write,
    pub labels: Option<&'a mut dyn Write>,
}

/// Synthesizes `options.count` rows from `sources`; writes them (and their labels, when asked)
/// as JSON lines.
pub fn synthesize(
    engine: &Engine,
    sources: &[&PairRow],
    golden_file: &std::path::Path,
    options: SynthOptions,
    mut paraphraser: Option<&mut dyn Paraphraser>,
    outputs: SynthOutputs<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SynthSummary, SynthError> {
    let SynthOutputs {
        pairs: out,
        mut labels,
    } = outputs;
    if sources.is_empty() {
        return Err(SynthError::NoSources);
    }
    let program = &engine.program;
    let perturber = Perturber::new(program, sources);
    let mut labeler = PairLabeler::new(engine);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let grades = grade_names(engine);
    let quota = options
        .count
        .div_ceil(grades.len().saturating_sub(1).max(1));
    let in_policy: Vec<bool> = program.clauses.iter().map(|c| c.in_policy).collect();
    // The search works on records without their free text (the rubric never reads it, and it
    // is most of a record's bytes); the text is put back, and rewritten, when a row is written.
    let text_fields = text_fields(program);
    let stripped: Vec<Value> = sources
        .iter()
        .map(|r| strip_text(&r.value, &text_fields))
        .collect();
    let by_id: BTreeMap<&str, &PairRow> = sources
        .iter()
        .map(|r| (r.str_field("id").unwrap_or_default(), *r))
        .collect();
    let mut reached = labeler.no_hits();
    let mut per_grade: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept: Vec<Candidate> = Vec::new();
    let mut overflow: Vec<Candidate> = Vec::new();
    // Rows tried while exploring, to build on: boundaries that need two changes are reached.
    let mut frontier: Vec<Candidate> = Vec::new();
    let mut tried = 0usize;
    // Content keys of the golden pairs and of the rows kept: no row repeats another.
    let mut seen: BTreeSet<String> = stripped.iter().map(|v| content_key(engine, v)).collect();
    let explore_budget = options.count.saturating_mul(10).max(5_000);
    let fill_budget = options.count.saturating_mul(30).max(5_000);
    let Strategy::Coverage = options.strategy;
    let all_reached = |reached: &[bool]| reached.iter().zip(&in_policy).all(|(r, p)| *r || !*p);
    while kept.len() < options.count {
        // First explore until every clause is reached (or the budget is spent), keeping only
        // rows that reach a new clause; then fill every grade to its share.
        let exploring = !all_reached(&reached) && tried < explore_budget;
        if !exploring && tried >= explore_budget.saturating_add(fill_budget) {
            break;
        }
        let bases: &[Candidate] = if exploring { &frontier } else { &kept };
        let (mut value, from, mut changes, mut changed_roles) =
            match bases.choose(&mut rng).filter(|_| rng.random_bool(0.5)) {
                Some(k) => (
                    parse(&k.value),
                    k.from.clone(),
                    k.changes.clone(),
                    k.changed_roles.clone(),
                ),
                None => {
                    let i = rng.random_range(0..stripped.len());
                    let Some(value) = stripped.get(i) else {
                        break;
                    };
                    (
                        value.clone(),
                        value
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        Vec::new(),
                        BTreeSet::new(),
                    )
                }
            };
        if !value.is_object() {
            continue;
        }
        let n_ops = rng.random_range(1..=3usize);
        for _ in 0..n_ops {
            if let Some((_, roles, what)) = perturber.perturb(&mut value, &mut rng) {
                changes.push(what);
                changed_roles.extend(roles);
            }
        }
        tried += 1;
        let key = content_key(engine, &value);
        if seen.contains(&key) {
            continue;
        }
        let mut hits = labeler.no_hits();
        let labeled =
            labeler
                .label(0, &value, Some(&mut hits))
                .map_err(|error| SynthError::Row {
                    file: golden_file.to_path_buf(),
                    error,
                })?;
        let new_clause = hits
            .iter()
            .zip(&reached)
            .zip(&in_policy)
            .any(|((h, r), p)| *h && !*r && *p);
        let n = per_grade.entry(labeled.grade.clone()).or_insert(0);
        let candidate = Candidate {
            value: value.to_string(),
            key: key.clone(),
            from,
            changes,
            changed_roles,
            grade: labeled.grade.clone(),
            hits,
            label: labeled.json.to_string(),
        };
        let keep = if exploring {
            new_clause
        } else {
            new_clause || *n < quota || labeled.grade == ABSTAINED
        };
        if keep {
            *n += 1;
            seen.insert(key);
            for (r, h) in reached.iter_mut().zip(&candidate.hits) {
                *r |= *h;
            }
            kept.push(candidate);
            progress(kept.len(), options.count);
        } else if exploring {
            if frontier.len() < 4096 {
                frontier.push(candidate);
            } else {
                let i = rng.random_range(0..frontier.len());
                if let Some(slot) = frontier.get_mut(i) {
                    *slot = candidate;
                }
            }
        } else if overflow.len() < options.count {
            overflow.push(candidate);
        }
    }
    // Grades the perturbations could not fill leave room: fill it with what was tried.
    let mut rest = overflow.into_iter().chain(frontier);
    while kept.len() < options.count {
        let Some(c) = rest.next() else { break };
        if !seen.insert(c.key.clone()) {
            continue;
        }
        for (r, h) in reached.iter_mut().zip(&c.hits) {
            *r |= *h;
        }
        kept.push(c);
    }
    // Written in the order of the golden pairs they came from (then of their making), so the
    // rows of one job stay together.
    let order: BTreeMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.str_field("id").unwrap_or_default(), i))
        .collect();
    let mut kept: Vec<(usize, Candidate)> = kept.into_iter().enumerate().collect();
    kept.sort_by_key(|(i, c)| {
        (
            order.get(c.from.as_str()).copied().unwrap_or(usize::MAX),
            *i,
        )
    });
    let kept = kept.into_iter().map(|(_, c)| c);

    let mut by_grade: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    let mut stats = paraphraser.as_ref().map(|_| ParaphraseStats::default());
    for (n, c) in kept.enumerate() {
        let id = format!("s-{:06}", n + 1);
        let mut value = parse(&c.value);
        if let Some(root) = by_id.get(c.from.as_str()) {
            restore_text(&mut value, &root.value, &text_fields);
        }
        let roles: Vec<String> = program.roles.iter().map(|r| r.name.clone()).collect();
        for role in &roles {
            if c.changed_roles.contains(role)
                && let Some(r) = value.get_mut(role).and_then(Value::as_object_mut)
            {
                text::refresh(r);
            }
        }
        if let (Some(p), Some(stats)) = (paraphraser.as_deref_mut(), stats.as_mut()) {
            for role in &roles {
                if let Some(r) = value.get_mut(role).and_then(Value::as_object_mut) {
                    paraphrase::paraphrase_record(p, r, stats);
                }
            }
        }
        let Value::Object(map) = &mut value else {
            continue;
        };
        let suffix = format!("~{}", id);
        for (role, key) in roles.iter().zip(["query_id", "candidate_id"]) {
            if c.changed_roles.contains(role)
                && let Some(old) = map.get(key).and_then(Value::as_str)
            {
                let new = format!("{old}{suffix}");
                map.insert(key.to_string(), json!(new));
            }
        }
        map.insert("id".to_string(), json!(id));
        map.insert("source".to_string(), json!("synthetic"));
        map.insert("from".to_string(), json!(c.from));
        map.insert("perturbations".to_string(), json!(c.changes));
        map.remove("provenance");
        map.remove("kind");
        out.write_all(value.to_string().as_bytes())?;
        out.write_all(b"\n")?;
        if let Some(l) = labels.as_deref_mut() {
            let mut label = parse(&c.label);
            if let Value::Object(map) = &mut label {
                map.insert("id".to_string(), json!(id));
            }
            l.write_all(label.to_string().as_bytes())?;
            l.write_all(b"\n")?;
        }
        *by_grade.entry(c.grade.clone()).or_insert(0) += 1;
        for change in &c.changes {
            let field = change.split(':').next().unwrap_or_default().to_string();
            *by_operation.entry(field).or_insert(0) += 1;
        }
    }
    out.flush()?;
    if let Some(l) = labels {
        l.flush()?;
    }
    let cov = coverage(program, &reached);
    let unreached = cov
        .missed
        .iter()
        .filter_map(|i| program.clauses.get(*i).map(|c| c.label.clone()))
        .collect();
    Ok(SynthSummary {
        written: by_grade.values().sum(),
        sources: sources.len(),
        tried,
        by_grade: grades
            .iter()
            .map(|g| (g.clone(), by_grade.get(g).copied().unwrap_or(0)))
            .collect(),
        by_operation,
        coverage: cov,
        unreached,
        paraphrase: stats,
    })
}

impl SynthSummary {
    /// The summary `rubric data synth` prints.
    pub fn report(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "synthetic: {} pairs from {} golden pairs ({} perturbed pairs labeled to choose from)",
            self.written, self.sources, self.tried
        );
        let _ = writeln!(out, "by overall grade:");
        for (g, n) in &self.by_grade {
            let _ = writeln!(out, "  {g:<12} {n:>6}");
        }
        let _ = writeln!(out, "fields perturbed (times, over all rows):");
        for (f, n) in &self.by_operation {
            let _ = writeln!(out, "  {f:<36} {n:>6}");
        }
        let c = &self.coverage;
        let _ = writeln!(
            out,
            "clause coverage of the synthetic rows: {}/{}",
            c.covered, c.total
        );
        for u in &self.unreached {
            let _ = writeln!(out, "  not reached: {u}");
        }
        if let Some(p) = &self.paraphrase {
            let _ = writeln!(
                out,
                "paraphrase: {} texts asked, {} paraphrased, {} failed (kept as written)",
                p.asked, p.paraphrased, p.failed
            );
        }
        out
    }
}
