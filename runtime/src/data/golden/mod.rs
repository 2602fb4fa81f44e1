//! The golden set: job postings and profiles built from O*NET 29.3 and SkillSpan, paired and
//! labeled by the policy, sampled so every overall grade is well represented. Every record says
//! which of its fields are real, generated or composed (`provenance`); the stream is a fixed
//! function of the seed (ChaCha8).

pub mod onet;
pub mod pairs;
pub mod skillspan;
pub mod text;

use crate::label::decode::RowError;
use crate::label::engine::Engine;
use onet::{Occupation, OnetError, education_of, read_onet, seniority_of, years_of};
use pairs::{PairLabeler, grade_names};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_compiler::lower::ir::Const;
use serde_json::{Map, Value, json};
use skillspan::{Posting, SkillSpanError, read_skillspan};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

/// The seniority ladder of `std.career`, lowest first.
pub const LADDER: [&str; 7] = [
    "intern",
    "entry",
    "mid",
    "senior",
    "lead",
    "principal",
    "executive",
];
const EDUCATION: [&str; 6] = [
    "none",
    "high_school",
    "associate",
    "bachelor",
    "master",
    "doctorate",
];
/// Metro areas locations are drawn from (generated: O*NET has no places).
pub const METROS: [&str; 12] = [
    "Berlin",
    "San Francisco Bay Area",
    "New York",
    "London",
    "Lisbon",
    "Austin",
    "Chicago",
    "Seattle",
    "Toronto",
    "Bangalore",
    "Paris",
    "Amsterdam",
];
const CONTRACTS: [(&str, u32); 4] = [
    ("full_time", 70),
    ("part_time", 10),
    ("contract", 12),
    ("internship", 8),
];

/// The industries an occupation's SOC major group (the code's first two digits) is hired in:
/// generated, as O*NET does not say which companies employ an occupation.
pub fn industries(code: &str) -> &'static [&'static str] {
    match code.get(..2).unwrap_or_default() {
        "11" => &[
            "consulting",
            "financial_services",
            "software",
            "manufacturing",
        ],
        "13" => &["financial_services", "banking", "accounting", "insurance"],
        "15" => &[
            "software",
            "internet",
            "fintech",
            "cybersecurity",
            "gaming",
            "ecommerce",
        ],
        "17" => &[
            "manufacturing",
            "aerospace",
            "automotive",
            "semiconductors",
            "construction",
            "energy",
        ],
        "19" => &["biotech", "pharmaceuticals", "government", "education"],
        "21" => &["nonprofit", "government", "healthcare"],
        "23" => &["legal", "consulting", "government"],
        "25" => &["education", "edtech"],
        "27" => &["media", "entertainment", "marketing_advertising", "gaming"],
        "29" => &["healthcare", "hospitals", "medical_devices"],
        "31" => &["healthcare", "hospitals"],
        "33" => &["government", "defense"],
        "35" => &["food_beverage", "hospitality"],
        "37" => &["real_estate", "hospitality"],
        "39" => &["hospitality", "healthcare"],
        "41" => &["retail", "ecommerce", "consumer_goods", "software"],
        "43" => &[
            "financial_services",
            "healthcare",
            "government",
            "logistics",
        ],
        "45" => &["agriculture"],
        "47" => &["construction", "real_estate"],
        "49" => &[
            "manufacturing",
            "automotive",
            "utilities",
            "telecommunications",
        ],
        "51" => &["manufacturing", "food_beverage", "semiconductors"],
        "53" => &["logistics", "transportation"],
        _ => &["consulting"],
    }
}

/// Where a record's fields came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The O*NET-SOC code of the occupation the record was built from.
    pub onet: String,
    /// The SkillSpan posting whose sentences the text quotes (`train.json#12`).
    pub skillspan: Option<String>,
    /// Field name → `real`, `generated` or `composed` (real prose with a generated paragraph).
    pub fields: BTreeMap<String, Origin>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Real,
    Generated,
    Composed,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Real => "real",
            Origin::Generated => "generated",
            Origin::Composed => "composed",
        }
    }
}

impl Provenance {
    fn json(&self) -> Value {
        let mut out = Map::new();
        out.insert("onet".to_string(), json!(self.onet));
        if let Some(s) = &self.skillspan {
            out.insert("skillspan".to_string(), json!(s));
        }
        for origin in [Origin::Real, Origin::Generated, Origin::Composed] {
            let names: Vec<&String> = self
                .fields
                .iter()
                .filter(|(_, o)| **o == origin)
                .map(|(n, _)| n)
                .collect();
            out.insert(origin.name().to_string(), json!(names));
        }
        Value::Object(out)
    }
}

/// A record being built: its fields and where each came from.
#[derive(Clone, Debug, Default)]
struct Draft {
    record: Map<String, Value>,
    provenance: Provenance,
}

impl Draft {
    fn set(&mut self, field: &str, value: Value, origin: Origin) {
        self.record.insert(field.to_string(), value);
        self.provenance.fields.insert(field.to_string(), origin);
    }
}

#[derive(Debug)]
pub enum GoldenError {
    Onet(OnetError),
    SkillSpan(SkillSpanError),
    /// O*NET yielded no occupation with a job zone, titles, tasks and enough technology skills.
    NoOccupations,
    /// A built pair does not fit the policy's entities: the policy is not shaped like
    /// `job_match.policy`.
    Schema(RowError),
    Io(io::Error),
}

impl fmt::Display for GoldenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoldenError::Onet(e) => write!(f, "{e}"),
            GoldenError::SkillSpan(e) => write!(f, "{e}"),
            GoldenError::NoOccupations => write!(
                f,
                "no O*NET occupation has a job zone, titles, tasks and at least {MIN_SKILLS} technology skills"
            ),
            GoldenError::Schema(e) => write!(
                f,
                "a generated pair does not fit the policy's entities ({}): the golden generator \
                 builds the `Job` and `Candidate` records of `job_match.policy`",
                e.to_string().trim_start_matches("line 1: ")
            ),
            GoldenError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GoldenError {}

impl From<io::Error> for GoldenError {
    fn from(e: io::Error) -> Self {
        GoldenError::Io(e)
    }
}

/// Occupations with fewer technology skills cannot give a posting a skill list.
const MIN_SKILLS: usize = 4;
/// Candidates tried per job before a new job is drawn.
const TRIES_PER_JOB: usize = 12;

#[derive(Clone, Copy, Debug)]
pub struct GoldenOptions {
    pub seed: u64,
    pub pairs: usize,
}

/// How a candidate was drawn for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Same occupation and level, the must-have skills, the right place.
    Bullseye,
    /// Same occupation, one or two must-haves or a level short.
    NearMiss,
    /// Same occupation two or more levels away.
    OtherSeniority,
    /// An occupation the policy's tables call adjacent, or one in the same SOC minor group.
    Related,
    /// Another occupation of the same SOC major group.
    HardNegative,
    /// Any occupation.
    Random,
    /// A bullseye that breaks one hard constraint (sponsorship, presence, activity, contract).
    Constraint,
}

impl Kind {
    const ALL: [(Kind, u32); 7] = [
        (Kind::Bullseye, 20),
        (Kind::NearMiss, 20),
        (Kind::OtherSeniority, 15),
        (Kind::Related, 15),
        (Kind::HardNegative, 12),
        (Kind::Random, 8),
        (Kind::Constraint, 10),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Bullseye => "bullseye",
            Kind::NearMiss => "near_miss",
            Kind::OtherSeniority => "other_seniority",
            Kind::Related => "related_occupation",
            Kind::HardNegative => "hard_negative",
            Kind::Random => "random_negative",
            Kind::Constraint => "broken_constraint",
        }
    }
}

/// What a build did; every count reconciles with the pairs written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoldenSummary {
    pub pairs: usize,
    pub jobs: usize,
    pub candidates: usize,
    pub occupations: usize,
    /// Pairs labeled to choose from (kept and not).
    pub tried: usize,
    /// Pairs per overall grade, in the policy's order.
    pub by_grade: Vec<(String, usize)>,
    /// Pairs per way the candidate was drawn.
    pub by_kind: Vec<(String, usize)>,
    /// `role.field` → records where it was real, generated, composed.
    pub origins: BTreeMap<String, [usize; 3]>,
}

/// What a progress bar is told.
pub enum Progress<'a> {
    Reading(&'a str),
    Sampling { kept: usize, target: usize },
}

struct Sources {
    occupations: Vec<Occupation>,
    postings: Vec<Posting>,
    /// Per occupation: its policy title family.
    families: Vec<String>,
    /// Per occupation: occupations the policy's tables pair with its family.
    related: Vec<Vec<usize>>,
    /// Per posting, per sentence: its words (for choosing sentences that fit an occupation).
    posting_words: Vec<Vec<BTreeSet<String>>>,
    /// Per posting: the words of all its sentences.
    posting_vocabulary: Vec<BTreeSet<String>>,
    /// The computer and engineering occupations.
    tech: Vec<usize>,
}

/// A posting shares fewer words than this with an occupation: its sentences are not quoted.
const MIN_SHARED_WORDS: usize = 6;

/// Words too common to say what a posting is about.
const COMMON: [&str; 24] = [
    "with",
    "that",
    "this",
    "will",
    "your",
    "have",
    "from",
    "they",
    "their",
    "them",
    "other",
    "such",
    "work",
    "working",
    "team",
    "experience",
    "skills",
    "ability",
    "able",
    "using",
    "including",
    "within",
    "about",
    "software",
];

/// The distinctive words of a text: lower case, four letters or more, not common.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '+' && c != '#')
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !COMMON.contains(&w.as_str()))
        .collect()
}

/// An O*NET title as a policy title family: lower case, underscores, without `and`/`or`, cut
/// down to a family the policy names when one is a prefix of it (`Software Quality Assurance
/// Analysts and Testers` is `software_quality_assurance`).
pub fn title_family(title: &str, known: &[String]) -> String {
    let words: Vec<String> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !matches!(w.as_str(), "and" | "or" | "the" | "all" | "other"))
        .collect();
    let snake = words.join("_");
    known
        .iter()
        .filter(|k| {
            k.contains('_')
                && (snake == **k
                    || snake
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('_')))
        })
        .max_by_key(|k| k.len())
        .cloned()
        .unwrap_or(snake)
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> Option<T> {
    let total: u32 = items.iter().map(|(_, w)| *w).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if pick < *w {
            return Some(*item);
        }
        pick -= w;
    }
    items.first().map(|(i, _)| *i)
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
}

fn shift(rng: &mut ChaCha8Rng, ladder: &[&'static str], at: &str, by: i64) -> &'static str {
    let i = ladder.iter().position(|s| *s == at).unwrap_or(0) as i64;
    let j = (i + by).clamp(0, ladder.len() as i64 - 1) as usize;
    let _ = rng;
    ladder.get(j).copied().unwrap_or_default()
}

fn rank(ladder: &[&str], at: &str) -> i64 {
    ladder.iter().position(|s| *s == at).unwrap_or(0) as i64
}

/// A number as JSON: whole numbers without a fraction (`5`, not `5.0`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn strings(v: &[String]) -> Value {
    json!(v)
}

impl Sources {
    fn load(
        onet_dir: &Path,
        skillspan_dir: &Path,
        engine: &Engine,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Sources, GoldenError> {
        let occupations: Vec<Occupation> =
            read_onet(onet_dir, &mut |f| progress(Progress::Reading(f)))
                .map_err(GoldenError::Onet)?
                .into_values()
                .filter(|o| {
                    o.job_zone.is_some()
                        && !o.titles.is_empty()
                        && !o.tasks.is_empty()
                        && o.tech_skills.len() >= MIN_SKILLS
                })
                .collect();
        if occupations.is_empty() {
            return Err(GoldenError::NoOccupations);
        }
        progress(Progress::Reading("SkillSpan"));
        let postings = read_skillspan(skillspan_dir).map_err(GoldenError::SkillSpan)?;
        let program = &engine.program;
        let families: Vec<String> = occupations
            .iter()
            .map(|o| title_family(&o.title, &program.strings))
            .collect();
        // Pairs of families the policy's (string, string) tables name.
        let mut adjacent: Vec<(String, String)> = Vec::new();
        for t in &program.tables {
            for e in &t.entries {
                if let [Const::Str(a), Const::Str(b)] = e.keys.as_slice() {
                    let s = |i: &u32| program.strings.get(*i as usize).cloned();
                    if let (Some(a), Some(b)) = (s(a), s(b)) {
                        adjacent.push((a.clone(), b.clone()));
                        adjacent.push((b, a));
                    }
                }
            }
        }
        let related = families
            .iter()
            .map(|f| {
                families
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| adjacent.iter().any(|(a, b)| a == f && b == *g))
                    .map(|(j, _)| j)
                    .collect()
            })
            .collect();
        let posting_words: Vec<Vec<BTreeSet<String>>> = postings
            .iter()
            .map(|p| p.sentences.iter().map(|s| words(s)).collect())
            .collect();
        let tech = occupations
            .iter()
            .enumerate()
            .filter(|(_, o)| is_tech(&o.code))
            .map(|(i, _)| i)
            .collect();
        let posting_vocabulary = posting_words
            .iter()
            .map(|sentences| sentences.iter().flatten().cloned().collect())
            .collect();
        Ok(Sources {
            occupations,
            postings,
            families,
            related,
            posting_words,
            posting_vocabulary,
            tech,
        })
    }

    fn occupation(&self, i: usize) -> Option<&Occupation> {
        self.occupations.get(i)
    }

    fn skill_names(&self, i: usize) -> Vec<String> {
        self.occupation(i)
            .map(|o| o.tech_skills.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Another occupation for a candidate of `kind`, drawn for the job's occupation `job`.
    fn other_occupation(&self, rng: &mut ChaCha8Rng, job: usize, kind: Kind) -> usize {
        let code = |i: usize| {
            self.occupation(i)
                .map(|o| o.code.clone())
                .unwrap_or_default()
        };
        let job_code = code(job);
        let same_prefix = |n: usize| -> Vec<usize> {
            (0..self.occupations.len())
                .filter(|&i| i != job && code(i).get(..n) == job_code.get(..n))
                .collect()
        };
        let choices: Vec<usize> = match kind {
            Kind::Related => {
                let r = self.related.get(job).cloned().unwrap_or_default();
                if !r.is_empty() && rng.random_bool(0.7) {
                    r
                } else {
                    let minor = same_prefix(5);
                    if minor.is_empty() {
                        same_prefix(2)
                    } else {
                        minor
                    }
                }
            }
            Kind::HardNegative => same_prefix(2),
            _ => Vec::new(),
        };
        match choices.choose(rng) {
            Some(i) => *i,
            None => rng.random_range(0..self.occupations.len()),
        }
    }
}

struct Job {
    occupation: usize,
    draft: Draft,
}

/// Whether an occupation is a computer or engineering one (SOC major groups 15 and 17): the
/// kind of job SkillSpan's postings are, and the one the policy's title tables know best.
fn is_tech(code: &str) -> bool {
    matches!(code.get(..2), Some("15" | "17"))
}

/// The share of postings drawn from computer and engineering occupations (about a tenth of
/// O*NET's occupations).
const TECH_SHARE: f64 = 0.4;

fn build_job(src: &Sources, rng: &mut ChaCha8Rng) -> Job {
    let i = if rng.random_bool(TECH_SHARE) && !src.tech.is_empty() {
        src.tech
            .get(rng.random_range(0..src.tech.len()))
            .copied()
            .unwrap_or(0)
    } else {
        rng.random_range(0..src.occupations.len())
    };
    let fallback = Occupation::default();
    let occ = src.occupation(i).unwrap_or(&fallback);
    let mut d = Draft::default();
    d.provenance.onet = occ.code.clone();
    let zone_level = seniority_of(occ.job_zone.unwrap_or(3));
    let (seniority, level_origin) = if rng.random_bool(0.3) {
        let by = *[-2i64, -1, 1, 2].choose(rng).unwrap_or(&1);
        (shift(rng, &LADDER, zone_level, by), Origin::Generated)
    } else {
        (zone_level, Origin::Real)
    };
    let base = occ.titles.choose(rng).cloned().unwrap_or(occ.title.clone());
    let title = text::titled(&base, seniority);
    let title_origin = if title == base {
        Origin::Real
    } else {
        Origin::Composed
    };
    d.set("title", json!(title), title_origin);
    d.set(
        "title_family",
        json!(src.families.get(i).cloned().unwrap_or_default()),
        Origin::Real,
    );
    let names: Vec<String> = occ.tech_skills.iter().map(|s| s.name.clone()).collect();
    let top = names.len().min(12);
    let mut order: Vec<usize> = (0..top).collect();
    order.shuffle(rng);
    let n_required = if rng.random_bool(0.04) {
        0
    } else {
        rng.random_range(2..=6usize).min(top)
    };
    let required: Vec<String> = order
        .iter()
        .take(n_required)
        .filter_map(|j| names.get(*j).cloned())
        .collect();
    let mut rest: Vec<&String> = names.iter().filter(|n| !required.contains(n)).collect();
    rest.shuffle(rng);
    let n_preferred = rng.random_range(0..=3usize).min(rest.len());
    let preferred: Vec<String> = rest.into_iter().take(n_preferred).cloned().collect();
    d.set("required_skills", strings(&required), Origin::Real);
    d.set("preferred_skills", strings(&preferred), Origin::Real);
    d.set("seniority", json!(seniority), level_origin);
    match occ.experience_category {
        Some(c) => d.set("min_years", number(years_of(c)), Origin::Real),
        None => d.set(
            "min_years",
            json!(rng.random_range(0..=5)),
            Origin::Generated,
        ),
    }
    match occ.education_category {
        Some(c) => d.set("education", json!(education_of(c)), Origin::Real),
        None => d.set("education", json!(pick(rng, &EDUCATION)), Origin::Generated),
    }
    d.set(
        "industry",
        json!(pick(rng, industries(&occ.code))),
        Origin::Generated,
    );
    if rng.random_bool(0.88) {
        d.set("location", json!(pick(rng, &METROS)), Origin::Generated);
    } else {
        d.provenance
            .fields
            .insert("location".to_string(), Origin::Generated);
    }
    d.set("remote", json!(rng.random_bool(0.18)), Origin::Generated);
    let contract = weighted(rng, &CONTRACTS).unwrap_or("full_time");
    d.set("employment_type", json!(contract), Origin::Generated);
    d.set(
        "visa_sponsorship",
        json!(rng.random_bool(0.45)),
        Origin::Generated,
    );
    let weeks = *[1, 2, 4, 6, 8, 12].choose(rng).unwrap_or(&4);
    d.set("start_within_weeks", json!(weeks), Origin::Generated);
    // Real prose: the occupation's description, then sentences of the real posting that shares
    // the most words with the occupation (its title, description and tasks), drawn
    // among the five closest; its two to four sentences closest to the occupation, in order.
    // Other occupations quote their O*NET tasks.
    let mut about = words(&occ.title);
    about.extend(words(&occ.description));
    for t in &occ.tasks {
        about.extend(words(t));
    }
    let overlap = |w: &BTreeSet<String>| w.intersection(&about).count();
    // SkillSpan's postings are software and engineering jobs: only those occupations (SOC
    // major groups 15 and 17) quote them.
    let fits = is_tech(&occ.code);
    let mut ranked: Vec<(usize, usize)> = src
        .posting_vocabulary
        .iter()
        .enumerate()
        .filter(|_| fits)
        .map(|(i, vocabulary)| (overlap(vocabulary), i))
        .filter(|(shared, _)| *shared >= MIN_SHARED_WORDS)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let top: Vec<usize> = ranked.iter().take(5).map(|(_, i)| *i).collect();
    let mut prose = occ.description.clone();
    if let Some(pi) = top.choose(rng).copied()
        && let (Some(p), Some(sentence_words)) = (src.postings.get(pi), src.posting_words.get(pi))
    {
        let n = rng.random_range(2..=4usize).min(p.sentences.len());
        let mut chosen: Vec<(usize, usize)> = sentence_words
            .iter()
            .enumerate()
            .map(|(j, w)| (overlap(w), j))
            .collect();
        chosen.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut picked: Vec<usize> = chosen.iter().take(n).map(|(_, j)| *j).collect();
        picked.sort_unstable();
        for j in picked {
            if let Some(sentence) = p.sentences.get(j) {
                prose.push(' ');
                prose.push_str(sentence);
            }
        }
        d.provenance.skillspan = Some(p.id.clone());
    } else {
        // No real posting is about this kind of work: the occupation's own tasks instead.
        let n = rng.random_range(1..=2usize);
        for t in occ.tasks.iter().take(n) {
            prose.push(' ');
            prose.push_str(t);
        }
    }
    let description = text::with_glance(&prose, &text::job_glance(&d.record));
    d.set("description", json!(description), Origin::Composed);
    Job {
        occupation: i,
        draft: d,
    }
}

fn years_for(rng: &mut ChaCha8Rng, seniority: &str) -> f64 {
    let (lo, hi) = match seniority {
        "intern" => (0, 1),
        "entry" => (0, 2),
        "mid" => (2, 5),
        "senior" => (5, 9),
        "lead" => (8, 14),
        "principal" => (12, 20),
        _ => (15, 25),
    };
    f64::from(rng.random_range(lo..=hi))
}

fn build_candidate(src: &Sources, job: &Job, kind: Kind, rng: &mut ChaCha8Rng) -> Draft {
    let same = matches!(
        kind,
        Kind::Bullseye | Kind::NearMiss | Kind::OtherSeniority | Kind::Constraint
    );
    let i = match kind {
        Kind::Random => rng.random_range(0..src.occupations.len()),
        _ if same => job.occupation,
        _ => src.other_occupation(rng, job.occupation, kind),
    };
    let fallback = Occupation::default();
    let occ = src.occupation(i).unwrap_or(&fallback);
    let q = &job.draft.record;
    let q_str = |k: &str| {
        q.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let q_list = |k: &str| -> Vec<String> {
        q.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut d = Draft::default();
    d.provenance.onet = occ.code.clone();

    // Skills: real, from the occupation's technology skills; for the same occupation, chosen
    // to cover the posting's must-haves as the kind says.
    let own = src.skill_names(i);
    let required = q_list("required_skills");
    let mut skills: Vec<String> = Vec::new();
    if same {
        let keep = match kind {
            Kind::NearMiss if !required.is_empty() => {
                required.len() - rng.random_range(1..=2usize.min(required.len()))
            }
            Kind::OtherSeniority => rng.random_range(required.len() / 2..=required.len()),
            _ if required.len() >= 5 && rng.random_bool(0.3) => required.len() - 1,
            _ => required.len(),
        };
        let mut r = required.clone();
        r.shuffle(rng);
        skills.extend(r.into_iter().take(keep));
        for p in q_list("preferred_skills") {
            if rng.random_bool(0.5) {
                skills.push(p);
            }
        }
    }
    let mut extra: Vec<&String> = own.iter().take(20).collect();
    extra.shuffle(rng);
    let n_extra = if same {
        rng.random_range(1..=4usize)
    } else {
        rng.random_range(3..=8usize)
    };
    for s in extra.into_iter().take(n_extra) {
        if !skills.contains(s) {
            skills.push(s.clone());
        }
    }
    let job_level = q_str("seniority");
    let own_level = seniority_of(occ.job_zone.unwrap_or(3));
    let seniority = match kind {
        Kind::Bullseye | Kind::Constraint => {
            if rng.random_bool(0.8) {
                shift(rng, &LADDER, &job_level, 0)
            } else {
                let by = *[-1i64, 1].choose(rng).unwrap_or(&1);
                shift(rng, &LADDER, &job_level, by)
            }
        }
        Kind::NearMiss => {
            let by = *[-1i64, 0, 0, 1].choose(rng).unwrap_or(&0);
            shift(rng, &LADDER, &job_level, by)
        }
        Kind::OtherSeniority => {
            let at = rank(&LADDER, &job_level);
            let far: Vec<i64> = (-4i64..=4)
                .filter(|b| b.abs() >= 2 && (0..LADDER.len() as i64).contains(&(at + b)))
                .collect();
            let by = far.choose(rng).copied().unwrap_or(2);
            shift(rng, &LADDER, &job_level, by)
        }
        _ => {
            let by = rng.random_range(-1i64..=1);
            shift(rng, &LADDER, own_level, by)
        }
    };
    let min_years = q.get("min_years").and_then(Value::as_f64).unwrap_or(0.0);
    let years = if kind == Kind::NearMiss && min_years >= 2.0 && rng.random_bool(0.4) {
        (min_years * 0.75).floor()
    } else {
        years_for(rng, seniority)
    };
    let education = match occ.education_category {
        Some(c) if rng.random_bool(0.75) => (education_of(c), Origin::Real),
        Some(c) => {
            let by = *[-1i64, 1].choose(rng).unwrap_or(&1);
            (
                shift(rng, &EDUCATION, education_of(c), by),
                Origin::Generated,
            )
        }
        None => (pick(rng, &EDUCATION), Origin::Generated),
    };
    let industry = if same && rng.random_bool(0.6) {
        q_str("industry")
    } else {
        pick(rng, industries(&occ.code)).to_string()
    };
    let job_location = q
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut willing = rng.random_bool(0.35);
    let mut location: Option<String> = if rng.random_bool(0.12) {
        None
    } else if rng.random_bool(0.5) {
        job_location
            .clone()
            .or_else(|| Some(pick(rng, &METROS).to_string()))
    } else {
        Some(pick(rng, &METROS).to_string())
    };
    if kind == Kind::Bullseye && job_location.is_some() {
        if rng.random_bool(0.8) {
            location = job_location.clone();
        } else {
            willing = true;
        }
    }
    let mut needs_sponsorship = rng.random_bool(0.1);
    let mut last_active = if rng.random_bool(0.06) {
        rng.random_range(366..=900)
    } else {
        rng.random_range(0..=60)
    };
    let job_contract = q_str("employment_type");
    let mut contract = if rng.random_bool(0.75) {
        job_contract.clone()
    } else {
        weighted(rng, &CONTRACTS).unwrap_or("full_time").to_string()
    };
    if matches!(kind, Kind::Bullseye | Kind::NearMiss) {
        needs_sponsorship = needs_sponsorship && rng.random_bool(0.3);
    }
    if kind == Kind::Constraint {
        match rng.random_range(0..4) {
            0 => needs_sponsorship = true,
            1 => {
                location = Some(
                    METROS
                        .iter()
                        .find(|m| Some(m.to_string()) != job_location)
                        .map_or(String::new(), |m| m.to_string()),
                );
                willing = false;
            }
            2 => last_active = rng.random_range(366..=900),
            _ => {
                contract = CONTRACTS
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .find(|c| *c != job_contract)
                    .unwrap_or_default()
            }
        }
    }

    d.set(
        "title_family",
        json!(src.families.get(i).cloned().unwrap_or_default()),
        Origin::Real,
    );
    d.set("skills", strings(&skills), Origin::Real);
    d.set("seniority", json!(seniority), Origin::Generated);
    d.set("years_experience", number(years), Origin::Generated);
    d.set("education", json!(education.0), education.1);
    d.set("industry", json!(industry), Origin::Generated);
    match &location {
        Some(l) => d.set("location", json!(l), Origin::Generated),
        None => {
            d.provenance
                .fields
                .insert("location".to_string(), Origin::Generated);
        }
    }
    d.set(
        "open_to_remote",
        json!(rng.random_bool(0.5)),
        Origin::Generated,
    );
    d.set("willing_to_relocate", json!(willing), Origin::Generated);
    d.set(
        "needs_sponsorship",
        json!(needs_sponsorship),
        Origin::Generated,
    );
    if rng.random_bool(0.8) {
        let w = *[0, 2, 4, 8, 12, 16].choose(rng).unwrap_or(&4);
        d.set("available_in_weeks", json!(w), Origin::Generated);
    } else {
        d.provenance
            .fields
            .insert("available_in_weeks".to_string(), Origin::Generated);
    }
    d.set("last_active_days", json!(last_active), Origin::Generated);
    d.set("preferred_employment", json!(contract), Origin::Generated);
    let base = occ.titles.choose(rng).cloned().unwrap_or(occ.title.clone());
    let title = text::titled(&base, seniority);
    let headline = text::headline(&title, &d.record);
    d.set("headline", json!(headline), Origin::Composed);
    let mut tasks: Vec<&String> = occ.tasks.iter().collect();
    tasks.shuffle(rng);
    let prose: Vec<&str> = tasks.into_iter().take(2).map(String::as_str).collect();
    let summary = text::with_glance(&prose.join(" "), &text::candidate_glance(&d.record));
    d.set("summary", json!(summary), Origin::Composed);
    d
}

struct Kept {
    job: usize,
    candidate: Draft,
    kind: Kind,
    grade: String,
}

/// Builds the golden set and writes it as JSON lines (pairs in LANGUAGE.md's format plus
/// `kind` and `provenance`).
pub fn build_golden(
    onet_dir: &Path,
    skillspan_dir: &Path,
    engine: &Engine,
    options: GoldenOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<GoldenSummary, GoldenError> {
    let src = Sources::load(onet_dir, skillspan_dir, engine, progress)?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut labeler = PairLabeler::new(engine);
    let grades = grade_names(engine);
    // Every grade but `abstained` gets an equal share; abstaining pairs are kept when they come.
    let quota_grades = grades.len().saturating_sub(1).max(1);
    let quota = options.pairs.div_ceil(quota_grades);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut kept: Vec<Kept> = Vec::new();
    let mut overflow: Vec<Kept> = Vec::new();
    let mut tried = 0usize;
    let max_tries = options.pairs.saturating_mul(40).max(1000);
    let roles: Vec<String> = engine
        .program
        .roles
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let (query_role, candidate_role) = (
        roles.first().cloned().unwrap_or_default(),
        roles.get(1).cloned().unwrap_or_default(),
    );
    while kept.len() < options.pairs && tried < max_tries {
        if tried.is_multiple_of(TRIES_PER_JOB) {
            jobs.push(build_job(&src, &mut rng));
        }
        let job_index = jobs.len() - 1;
        let Some(job) = jobs.last() else { break };
        let kind = weighted(&mut rng, &Kind::ALL).unwrap_or(Kind::Random);
        let candidate = build_candidate(&src, job, kind, &mut rng);
        tried += 1;
        let mut pair = Map::new();
        pair.insert("id".to_string(), json!("probe"));
        pair.insert(query_role.clone(), Value::Object(job.draft.record.clone()));
        pair.insert(
            candidate_role.clone(),
            Value::Object(candidate.record.clone()),
        );
        let labeled = labeler
            .label(1, &Value::Object(pair), None)
            .map_err(GoldenError::Schema)?;
        let entry = Kept {
            job: job_index,
            candidate,
            kind,
            grade: labeled.grade.clone(),
        };
        let n = count.entry(labeled.grade.clone()).or_insert(0);
        if *n < quota || labeled.grade == pairs::ABSTAINED {
            *n += 1;
            kept.push(entry);
            progress(Progress::Sampling {
                kept: kept.len(),
                target: options.pairs,
            });
        } else if overflow.len() < options.pairs {
            overflow.push(entry);
        }
    }
    // Grades the data cannot fill leave room: fill it with the grades that had more.
    let mut overflow = overflow.into_iter();
    while kept.len() < options.pairs {
        let Some(entry) = overflow.next() else { break };
        kept.push(entry);
    }

    // Ids in order of first appearance; jobs no pair kept are dropped.
    let mut job_ids: BTreeMap<usize, String> = BTreeMap::new();
    let mut summary = GoldenSummary {
        tried,
        ..GoldenSummary::default()
    };
    let mut by_grade: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut occupations: std::collections::BTreeSet<String> = Default::default();
    for (n, k) in kept.iter().enumerate() {
        let next = job_ids.len() + 1;
        let job_id = job_ids
            .entry(k.job)
            .or_insert_with(|| format!("j-{next:06}"))
            .clone();
        let Some(job) = jobs.get(k.job) else { continue };
        let candidate_id = format!("c-{:06}", n + 1);
        let mut row = Map::new();
        row.insert("id".to_string(), json!(format!("p-{:06}", n + 1)));
        row.insert("query_id".to_string(), json!(job_id));
        row.insert("candidate_id".to_string(), json!(candidate_id));
        row.insert(query_role.clone(), Value::Object(job.draft.record.clone()));
        row.insert(
            candidate_role.clone(),
            Value::Object(k.candidate.record.clone()),
        );
        row.insert("source".to_string(), json!("real"));
        row.insert("kind".to_string(), json!(k.kind.name()));
        let mut provenance = Map::new();
        provenance.insert(query_role.clone(), job.draft.provenance.json());
        provenance.insert(candidate_role.clone(), k.candidate.provenance.json());
        row.insert("provenance".to_string(), Value::Object(provenance));
        out.write_all(Value::Object(row).to_string().as_bytes())?;
        out.write_all(b"\n")?;
        *by_grade.entry(k.grade.clone()).or_insert(0) += 1;
        *by_kind.entry(k.kind).or_insert(0) += 1;
        occupations.insert(job.draft.provenance.onet.clone());
        occupations.insert(k.candidate.provenance.onet.clone());
        for (role, p) in [
            (&query_role, &job.draft.provenance),
            (&candidate_role, &k.candidate.provenance),
        ] {
            // A job's fields are counted once per pair, like a candidate's: per record written.
            for (field, origin) in &p.fields {
                let slot = summary
                    .origins
                    .entry(format!("{role}.{field}"))
                    .or_insert([0; 3]);
                let i = match origin {
                    Origin::Real => 0,
                    Origin::Generated => 1,
                    Origin::Composed => 2,
                };
                if let Some(c) = slot.get_mut(i) {
                    *c += 1;
                }
            }
        }
    }
    out.flush()?;
    summary.pairs = kept.len();
    summary.jobs = job_ids.len();
    summary.candidates = kept.len();
    summary.occupations = occupations.len();
    summary.by_grade = grades
        .iter()
        .map(|g| (g.clone(), by_grade.get(g).copied().unwrap_or(0)))
        .collect();
    summary.by_kind = by_kind
        .into_iter()
        .map(|(k, n)| (k.name().to_string(), n))
        .collect();
    Ok(summary)
}

impl GoldenSummary {
    /// The summary as `rubric data golden` prints it.
    pub fn report(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "golden set: {} pairs, {} jobs, {} candidates, {} O*NET occupations ({} pairs labeled to choose from)",
            self.pairs, self.jobs, self.candidates, self.occupations, self.tried
        );
        let _ = writeln!(out, "by overall grade:");
        for (g, n) in &self.by_grade {
            let _ = writeln!(out, "  {g:<12} {n:>6}");
        }
        let _ = writeln!(out, "by how the candidate was drawn:");
        for (k, n) in &self.by_kind {
            let _ = writeln!(out, "  {k:<20} {n:>6}");
        }
        let _ = writeln!(out, "fields (records real / generated / composed):");
        for (f, [r, g, c]) in &self.origins {
            let _ = writeln!(out, "  {f:<32} {r:>6} {g:>6} {c:>6}");
        }
        out
    }
}
