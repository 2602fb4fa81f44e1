//! What a teacher learns from, row by row: each pair's text (the pipeline's `reads`), features
//! and targets — the rubric's own labels for policy targets, the cleaned click log's clicks
//! (joined to their pairs by `query_id` and `candidate_id`) for the click target — split as the
//! mix stage split the real pairs, so no teacher ever trains on a held-out pair.

use super::features::{FeatureEncoder, Row};
use crate::data::clicks::Click;
use crate::data::golden::pairs::{PairLabeler, PairRow, grade_names, read_pairs};
use crate::encode::{TextField, pair_texts};
use crate::label::engine::Engine;
use rubric_compiler::lower::plan::{ModelInputs, Target};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;

/// The heads a teacher has, derived from its targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Heads {
    /// Score heads by name (dimensions, `overall`), each with the label it learns: a dimension's
    /// index, or `None` for the overall score.
    pub scores: Vec<(String, Option<usize>)>,
    /// The overall grades, best first (empty: no grade head).
    pub grades: Vec<String>,
    pub click: bool,
    /// The score heads whose predictions are put on the rubric's own scores (see [`Levels`]).
    pub levels: Levels,
}

/// The few scores a dimension of the rubric gives, by score head: a rule's table of scores
/// (`0`, `0.4`, `1` for employment type) rather than a ramp or a share, which give many. A
/// model's prediction for such a head is reported as the nearest of them, as the rubric itself
/// would score the pair; Spearman's correlation against the rubric counts its ties then, where a
/// continuous prediction, however close, orders each tie at random (against three values with
/// most pairs on one, a perfect continuous prediction reaches about 0.64). Found from the
/// training labels, kept on the model's card; the raw probabilities still feed distillation.
pub type Levels = BTreeMap<String, Vec<f64>>;

/// The most scores a head's labels take for them to be its levels.
pub const MAX_LEVELS: usize = 16;
/// The fewest training labels each level must have on average: a ramp seen on a few rows also
/// shows few distinct values.
const ROWS_PER_LEVEL: usize = 10;

/// Each dimension head's levels on `rows`: the distinct finite labels (to six decimals, as the
/// label stage writes them) where there are at most [`MAX_LEVELS`] and at least
/// `ROWS_PER_LEVEL` labels per level. The overall score has none: it ranks, and a tie in a
/// ranking is a loss.
pub fn levels_of(heads: &[(String, Option<usize>)], rows: &[Example]) -> Levels {
    let mut out = Levels::new();
    for (k, (name, dim)) in heads.iter().enumerate() {
        if dim.is_none() {
            continue;
        }
        let mut seen = BTreeSet::new();
        let mut labels = 0usize;
        for v in rows.iter().filter_map(|e| e.scores.get(k)) {
            if v.is_finite() {
                labels += 1;
                // Six decimals in millionths, so that equal labels are one level.
                seen.insert((f64::from(*v) * 1e6).round() as i64);
                if seen.len() > MAX_LEVELS {
                    break;
                }
            }
        }
        if !seen.is_empty() && seen.len() <= MAX_LEVELS && labels >= seen.len() * ROWS_PER_LEVEL {
            out.insert(
                name.clone(),
                seen.into_iter().map(|m| m as f64 / 1e6).collect(),
            );
        }
    }
    out
}

/// The level nearest to `score` (the lower of two as near), or `score` itself when there are no
/// levels.
pub fn on_levels(levels: &[f64], score: f64) -> f64 {
    levels
        .iter()
        .copied()
        .min_by(|a, b| (a - score).abs().total_cmp(&(b - score).abs()))
        .unwrap_or(score)
}

impl Heads {
    pub fn new(targets: &[Target], engine: &Engine) -> Result<Heads, String> {
        let mut heads = Heads {
            scores: Vec::new(),
            grades: Vec::new(),
            click: false,
            levels: Levels::new(),
        };
        for t in targets {
            match t {
                Target::Dimension(name) => {
                    let i = engine
                        .program
                        .dimensions
                        .iter()
                        .position(|d| &d.name == name)
                        .ok_or_else(|| format!("the policy has no dimension `{name}`"))?;
                    heads.scores.push((name.clone(), Some(i)));
                }
                Target::Overall => heads.scores.push(("overall".to_string(), None)),
                Target::Grades => {
                    heads.grades = grade_names(engine)
                        .into_iter()
                        .filter(|g| g != crate::data::golden::pairs::ABSTAINED)
                        .collect();
                }
                Target::Click => heads.click = true,
            }
        }
        Ok(heads)
    }

    /// Whether any head learns from the rubric's labels.
    pub fn reads_labels(&self) -> bool {
        !self.scores.is_empty() || !self.grades.is_empty()
    }
}

/// One row a teacher learns from or is measured on.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The query's text and the candidate's.
    pub texts: (String, String),
    pub features: Vec<f32>,
    /// A target per score head; NaN where the rubric abstained.
    pub scores: Vec<f32>,
    /// The overall grade's index among the heads' grades.
    pub grade: Option<usize>,
    pub click: Option<bool>,
    /// One-based position of the impression (clicks only).
    pub position: u32,
    /// Whether it comes from a real pair (the mix's share is of real rows).
    pub real: bool,
    /// The query it ranks for, for NDCG.
    pub query: String,
}

/// The training and validation rows, and what was found while joining them.
pub struct Examples {
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
    pub features: FeatureEncoder,
    /// Click-log rows whose pair is in neither split (a synthetic pair has no clicks).
    pub unjoined_clicks: u64,
}

/// The mix stage's outputs and the cleaned click log, when the teacher learns clicks.
pub struct Sources<'a> {
    pub pool: &'a Path,
    pub validation: &'a Path,
    pub clicks: Option<&'a Path>,
}

fn text_fields(inputs: &ModelInputs, engine: &Engine) -> Result<Vec<TextField>, String> {
    inputs
        .reads
        .iter()
        .map(|f| {
            let role = engine
                .program
                .roles
                .iter()
                .position(|r| r.name == f.role)
                .ok_or_else(|| format!("the policy has no role `{}`", f.role))?;
            Ok(TextField {
                role,
                field: f.field.clone(),
            })
        })
        .collect()
}

/// A pair's labels as targets of the heads.
fn targets(
    labeler: &mut PairLabeler<'_>,
    heads: &Heads,
    row: &PairRow,
    file: &Path,
) -> Result<(Vec<f32>, Option<usize>), String> {
    if !heads.reads_labels() {
        return Ok((Vec::new(), None));
    }
    let labeled = labeler
        .label(row.line, &row.value, None)
        .map_err(|e| format!("`{}`, {e}", file.display()))?;
    let scores = heads
        .scores
        .iter()
        .map(|(_, dim)| {
            let v = match dim {
                Some(i) => labeled.label.dimensions.get(*i).copied().flatten(),
                None => labeled.label.overall,
            };
            v.map_or(f32::NAN, |v| v as f32)
        })
        .collect();
    let grade = heads.grades.iter().position(|g| *g == labeled.grade);
    Ok((scores, grade))
}

/// Makes the rows of one model (its heads, text fields and fitted features) from pairs, and
/// impressions of pairs.
pub struct RowMaker<'e> {
    engine: &'e Engine,
    heads: &'e Heads,
    fields: Vec<TextField>,
    encoder: FeatureEncoder,
    labeler: PairLabeler<'e>,
}

impl<'e> RowMaker<'e> {
    pub fn new(
        engine: &'e Engine,
        heads: &'e Heads,
        inputs: &ModelInputs,
        encoder: FeatureEncoder,
    ) -> Result<RowMaker<'e>, String> {
        Ok(RowMaker {
            engine,
            heads,
            fields: text_fields(inputs, engine)?,
            encoder,
            labeler: PairLabeler::new(engine),
        })
    }

    /// The fitted features the rows are encoded with.
    pub fn encoder(&self) -> &FeatureEncoder {
        &self.encoder
    }

    /// The row of a pair of `file`, or of an impression of it.
    pub fn make(
        &mut self,
        row: &PairRow,
        file: &Path,
        click: Option<&Click>,
    ) -> Result<Example, String> {
        self.make_row(row, file, click, true)
    }

    /// The row of an unlabeled pair: no label of the rubric (its scores not a number, no
    /// grade), no click; a real pair unless it says it is synthetic.
    pub fn make_unlabeled(&mut self, row: &PairRow, file: &Path) -> Result<Example, String> {
        self.make_row(row, file, None, false)
    }

    fn make_row(
        &mut self,
        row: &PairRow,
        file: &Path,
        click: Option<&Click>,
        labeled: bool,
    ) -> Result<Example, String> {
        let engine = self.engine;
        let texts = pair_texts(&engine.program, &self.fields, &row.value)
            .map_err(|e| format!("`{}`, line {}: {e}", file.display(), row.line))?;
        let mut features = Vec::with_capacity(self.encoder.width());
        self.encoder
            .encode(
                &Row {
                    pair: &row.value,
                    ts: click.map(|c| c.ts),
                },
                &mut features,
            )
            .map_err(|e| format!("`{}`, line {}: {e}", file.display(), row.line))?;
        let (scores, grade) = if labeled {
            targets(&mut self.labeler, self.heads, row, file)?
        } else {
            (vec![f32::NAN; self.heads.scores.len()], None)
        };
        Ok(Example {
            texts,
            features,
            scores,
            grade,
            click: click.map(|c| c.clicked),
            position: click.map_or(0, |c| c.position),
            real: row.str_field("source") != Some("synthetic"),
            query: row
                .str_field("query_id")
                .map(str::to_string)
                .or_else(|| {
                    row.value
                        .get(engine.program.roles.first().map_or("query", |r| &r.name))
                        .map(|q| q.to_string())
                })
                .unwrap_or_default(),
        })
    }
}

/// The click log's impressions of real pairs, by the pair's index in the pool (training) or in
/// the validation split (held out).
#[derive(Debug, Default)]
pub struct Impressions {
    pub train: Vec<(usize, Click)>,
    pub validation: Vec<(usize, Click)>,
    /// Rows whose pair is in neither split (a synthetic pair has no clicks).
    pub unjoined: u64,
}

/// Joins the cleaned click log to the real pairs by `query_id` and `candidate_id`.
pub fn join_clicks(
    pool: &[PairRow],
    validation: &[PairRow],
    pool_path: &Path,
    clicks_path: &Path,
) -> Result<Impressions, String> {
    let mut by_key: HashMap<(String, String), (bool, usize)> = HashMap::new();
    for (held, rows) in [(false, pool), (true, validation)] {
        for (i, r) in rows.iter().enumerate() {
            if r.str_field("source") == Some("synthetic") {
                continue;
            }
            if let (Some(q), Some(c)) = (r.str_field("query_id"), r.str_field("candidate_id")) {
                by_key.insert((q.to_string(), c.to_string()), (held, i));
            }
        }
    }
    if by_key.is_empty() {
        return Err(format!(
            "clicks are joined to pairs by `query_id` and `candidate_id`, and the pairs of `{}` \
             have neither",
            pool_path.display()
        ));
    }
    let file = std::fs::File::open(clicks_path)
        .map_err(|e| format!("cannot read `{}`: {e}", clicks_path.display()))?;
    let mut out = Impressions::default();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read `{}`: {e}", clicks_path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let click = Click::parse(i as u64 + 1, &line)
            .map_err(|e| format!("`{}`, {e}", clicks_path.display()))?;
        let key = (click.query_id.clone(), click.candidate_id.clone());
        match by_key.get(&key) {
            Some(&(true, index)) => out.validation.push((index, click)),
            Some(&(false, index)) => out.train.push((index, click)),
            None => out.unjoined += 1,
        }
    }
    Ok(out)
}

/// Reads the mix's pairs (and the click log) into examples for these heads and inputs, their
/// features encoded by `fitted` (a trained model's) or by an encoder fitted on the pool.
pub fn build(
    engine: &Engine,
    heads: &Heads,
    inputs: &ModelInputs,
    fitted: Option<&FeatureEncoder>,
    sources: &Sources<'_>,
) -> Result<Examples, String> {
    let read = |p: &Path| read_pairs(p).map_err(|e| e.to_string());
    let pool = read(sources.pool)?;
    let validation = read(sources.validation)?;
    let encoder = match fitted {
        Some(f) => f.clone(),
        None => fit(&inputs.features, &pool),
    };
    let mut maker = RowMaker::new(engine, heads, inputs, encoder)?;

    // One example per pair, or per impression of a real pair when the teacher learns clicks.
    if !heads.click {
        let train = pool
            .iter()
            .map(|r| maker.make(r, sources.pool, None))
            .collect::<Result<_, _>>()?;
        let held = validation
            .iter()
            .map(|r| maker.make(r, sources.validation, None))
            .collect::<Result<_, _>>()?;
        return Ok(Examples {
            train,
            validation: held,
            features: maker.encoder,
            unjoined_clicks: 0,
        });
    }
    let Some(clicks_path) = sources.clicks else {
        return Err(
            "the teacher predicts `click`, and the pipeline declares no click log: add one to \
             `data` (`clicks \"data/clicks.jsonl\" clean { ... }`)"
                .to_string(),
        );
    };
    let joined = join_clicks(&pool, &validation, sources.pool, clicks_path)?;
    let mut impressions = |rows: &[PairRow], file: &Path, clicks: &[(usize, Click)]| {
        clicks
            .iter()
            .filter_map(|(i, c)| rows.get(*i).map(|r| (r, c)))
            .map(|(r, c)| maker.make(r, file, Some(c)))
            .collect::<Result<Vec<_>, String>>()
    };
    let train = impressions(&pool, sources.pool, &joined.train)?;
    let held_out = impressions(&validation, sources.validation, &joined.validation)?;
    Ok(Examples {
        train,
        validation: held_out,
        features: maker.encoder,
        unjoined_clicks: joined.unjoined,
    })
}

/// Features fitted on the pool's pairs.
pub fn fit(features: &[rubric_compiler::lower::plan::Feature], pool: &[PairRow]) -> FeatureEncoder {
    let rows: Vec<Row<'_>> = pool
        .iter()
        .map(|r| Row {
            pair: &r.value,
            ts: None,
        })
        .collect();
    FeatureEncoder::fit(features, &rows)
}

/// The texts a tokenizer is learned from: each distinct query and candidate text of the
/// training rows once, in a fixed order.
pub fn training_texts(train: &[Example]) -> Vec<&str> {
    let mut texts: Vec<&str> = train
        .iter()
        .flat_map(|e| [e.texts.0.as_str(), e.texts.1.as_str()])
        .collect();
    texts.sort_unstable();
    texts.dedup();
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labeled(scores: Vec<f32>) -> Example {
        Example {
            texts: (String::new(), String::new()),
            features: Vec::new(),
            scores,
            grade: None,
            click: None,
            position: 0,
            real: true,
            query: String::new(),
        }
    }

    fn heads() -> Vec<(String, Option<usize>)> {
        vec![
            ("table".to_string(), Some(0)),
            ("ramp".to_string(), Some(1)),
            ("overall".to_string(), None),
        ]
    }

    #[test]
    fn a_dimension_with_few_scores_has_them_as_levels_and_a_ramp_has_none() {
        // 60 rows: the table gives 0, 0.4 and 1 (and abstains on some), the ramp 60 values,
        // the overall score three.
        let rows: Vec<Example> = (0..60)
            .map(|i| {
                let table = [0.0, 0.4, 1.0, f32::NAN][i % 4];
                labeled(vec![table, i as f32 / 60.0, [0.2, 0.5, 0.9][i % 3]])
            })
            .collect();
        let levels = levels_of(&heads(), &rows);
        assert_eq!(levels.len(), 1, "{levels:?}");
        // Six decimals, not the f32's 0.4000000059604645.
        assert_eq!(levels["table"], vec![0.0, 0.4, 1.0]);
    }

    #[test]
    fn few_rows_are_no_evidence_of_levels() {
        // Three values on twelve rows: a ramp seen briefly looks like a table.
        let rows: Vec<Example> = (0..12)
            .map(|i| labeled(vec![[0.1, 0.5, 0.7][i % 3], i as f32 / 12.0, 0.0]))
            .collect();
        assert!(levels_of(&heads(), &rows).is_empty());
        let more: Vec<Example> = (0..30)
            .map(|i| labeled(vec![[0.1, 0.5, 0.7][i % 3], i as f32 / 30.0, 0.0]))
            .collect();
        let levels = levels_of(&heads(), &more);
        assert_eq!(levels.len(), 1, "{levels:?}");
        assert_eq!(levels["table"], vec![0.1, 0.5, 0.7]);
    }

    #[test]
    fn more_than_the_most_levels_are_a_ramp() {
        let rows: Vec<Example> = (0..1000)
            .map(|i| labeled(vec![(i % (MAX_LEVELS + 1)) as f32 / 100.0, 0.0, 0.0]))
            .collect();
        assert!(!levels_of(&heads(), &rows).contains_key("table"));
    }

    #[test]
    fn a_score_goes_to_the_nearest_level() {
        let levels = [0.0, 0.4, 1.0];
        assert_eq!(on_levels(&levels, 0.93), 1.0);
        assert_eq!(on_levels(&levels, 0.31), 0.4);
        assert_eq!(on_levels(&levels, 0.19), 0.0);
        // Halfway: the lower.
        assert_eq!(on_levels(&levels, 0.2), 0.0);
        assert_eq!(on_levels(&[], 0.37), 0.37);
    }
}
