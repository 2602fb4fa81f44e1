//! Decoded pairs held by column: each field of every role in one typed array (sets in one
//! shared array of ids), so the engine reads a batch's values of one field side by side instead
//! of chasing each pair's own allocations.

use super::decode::Pair;
use super::value::{Kind, Seq, Val};
use rubric_compiler::lower::ir::{LabelingProgram, ValueType};

/// Decoded pairs, by column. Built from decoded pairs with [`PairBatch::push`].
#[derive(Clone, Debug)]
pub struct PairBatch {
    ids: Vec<String>,
    columns: Vec<Column>,
}

/// The values of one field of one role, for every pair of a batch.
#[derive(Clone, Debug)]
pub(super) enum Column {
    /// Numbers; NaN where the field is missing (decoded numbers are finite).
    Num(Vec<f64>),
    /// 0 false, 1 true, [`MISSING_BOOL`] missing.
    Bool(Vec<u8>),
    /// Interned strings, or enum positions when `is_enum`; [`MISSING_ID`] missing.
    Id { ids: Vec<u32>, is_enum: bool },
    /// Sets or lists of ids: pair `i`'s are `items[starts[i]..starts[i + 1]]`.
    Ids {
        starts: Vec<u32>,
        items: Vec<u32>,
        missing: Vec<bool>,
        kind: Kind,
    },
    /// Lists or sets of numbers, laid out as `Ids`.
    Nums {
        starts: Vec<u32>,
        items: Vec<f64>,
        missing: Vec<bool>,
    },
    /// Free text: never read, only whether it is missing.
    Text(Vec<bool>),
    /// Any value, one by one: a column whose values did not fit its type (only a hand-made
    /// program or pair gets here).
    Vals(Vec<Val<'static>>),
}

pub(super) const MISSING_BOOL: u8 = 2;
pub(super) const MISSING_ID: u32 = u32::MAX;
/// An id that abstains. Interned strings stay below it: an id column refuses ids from here up
/// (four billion strings in one batch) and keeps such values one by one instead.
pub(super) const ABSENT_ID: u32 = u32::MAX - 1;

/// The first column of each role: field `f` of role `r` is column `starts[r] + f`.
pub(super) fn role_starts(program: &LabelingProgram) -> Vec<usize> {
    let mut at = 0;
    program
        .roles
        .iter()
        .map(|r| {
            let start = at;
            at += program
                .entities
                .get(r.entity as usize)
                .map_or(0, |e| e.fields.len());
            start
        })
        .collect()
}

impl Column {
    fn for_type(ty: &ValueType) -> Column {
        match ty {
            ValueType::Number => Column::Num(Vec::new()),
            ValueType::Bool => Column::Bool(Vec::new()),
            ValueType::String => Column::Id {
                ids: Vec::new(),
                is_enum: false,
            },
            ValueType::Enum { .. } => Column::Id {
                ids: Vec::new(),
                is_enum: true,
            },
            ValueType::Text => Column::Text(Vec::new()),
            ValueType::Set { of } | ValueType::List { of } => {
                let starts = vec![0];
                if **of == ValueType::Number {
                    Column::Nums {
                        starts,
                        items: Vec::new(),
                        missing: Vec::new(),
                    }
                } else {
                    Column::Ids {
                        starts,
                        items: Vec::new(),
                        missing: Vec::new(),
                        kind: if matches!(ty, ValueType::Set { .. }) {
                            Kind::Set
                        } else {
                            Kind::List
                        },
                    }
                }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Num(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Id { ids, .. } => ids.len(),
            Column::Ids { missing, .. } | Column::Nums { missing, .. } => missing.len(),
            Column::Text(v) => v.len(),
            Column::Vals(v) => v.len(),
        }
    }

    /// Appends a value; false when it does not fit the column's type.
    fn push(&mut self, v: &Val<'_>) -> bool {
        match (self, v) {
            (Column::Num(c), Val::Num(n)) if !n.is_nan() => c.push(*n),
            (Column::Num(c), Val::Missing) => c.push(f64::NAN),
            (Column::Bool(c), Val::Bool(b)) => c.push(u8::from(*b)),
            (Column::Bool(c), Val::Missing) => c.push(MISSING_BOOL),
            (Column::Id { ids, is_enum }, Val::Str(s) | Val::Enum(s))
                if *s < ABSENT_ID && *is_enum == matches!(v, Val::Enum(_)) =>
            {
                ids.push(*s)
            }
            (Column::Id { ids, .. }, Val::Missing) => ids.push(MISSING_ID),
            (
                Column::Ids {
                    starts,
                    items,
                    missing,
                    kind,
                },
                Val::Ids(seq, k),
            ) if k == kind => return push_seq(starts, items, missing, seq),
            (
                Column::Nums {
                    starts,
                    items,
                    missing,
                },
                Val::Nums(seq),
            ) => return push_seq(starts, items, missing, seq),
            (
                Column::Ids {
                    starts, missing, ..
                }
                | Column::Nums {
                    starts, missing, ..
                },
                Val::Missing,
            ) => {
                starts.push(starts.last().copied().unwrap_or(0));
                missing.push(true);
            }
            (Column::Text(c), Val::Text) => c.push(false),
            (Column::Text(c), Val::Missing) => c.push(true),
            (Column::Vals(c), v) => c.push(owned(v)),
            _ => return false,
        }
        true
    }

    /// Pair `i`'s value, borrowing any sequence from the column.
    pub(super) fn val(&self, i: usize) -> Val<'_> {
        let range = |starts: &[u32]| {
            let a = starts.get(i).copied().unwrap_or(0) as usize;
            let b = starts.get(i + 1).copied().unwrap_or(0) as usize;
            a..b.max(a)
        };
        match self {
            Column::Num(c) => match c.get(i) {
                Some(n) if !n.is_nan() => Val::Num(*n),
                _ => Val::Missing,
            },
            Column::Bool(c) => match c.get(i) {
                Some(0) => Val::Bool(false),
                Some(1) => Val::Bool(true),
                _ => Val::Missing,
            },
            Column::Id { ids, is_enum } => match ids.get(i) {
                Some(&s) if s != MISSING_ID => {
                    if *is_enum {
                        Val::Enum(s)
                    } else {
                        Val::Str(s)
                    }
                }
                _ => Val::Missing,
            },
            Column::Ids {
                starts,
                items,
                missing,
                kind,
            } => ids_val(starts, items, missing, *kind, i),
            Column::Nums {
                starts,
                items,
                missing,
            } => match missing.get(i) {
                Some(false) => Val::Nums(Seq::Borrowed(items.get(range(starts)).unwrap_or(&[]))),
                _ => Val::Missing,
            },
            Column::Text(c) => match c.get(i) {
                Some(false) => Val::Text,
                _ => Val::Missing,
            },
            Column::Vals(c) => c.get(i).map_or(Val::Missing, Val::view),
        }
    }

    /// The same values, one by one.
    fn into_vals(self) -> Vec<Val<'static>> {
        (0..self.len()).map(|i| owned(&self.val(i))).collect()
    }
}

/// Appends one sequence to a column of sequences; false when the column cannot hold it (its
/// items would pass `u32::MAX`).
fn push_seq<T: Copy>(
    starts: &mut Vec<u32>,
    items: &mut Vec<T>,
    missing: &mut Vec<bool>,
    seq: &[T],
) -> bool {
    let Ok(end) = u32::try_from(items.len() + seq.len()) else {
        return false;
    };
    items.extend_from_slice(seq);
    starts.push(end);
    missing.push(false);
    true
}

/// Pair `i`'s value in a column of id sets or lists, borrowing from it.
#[inline]
pub(super) fn ids_val<'c>(
    starts: &[u32],
    items: &'c [u32],
    missing: &[bool],
    kind: Kind,
    i: usize,
) -> Val<'c> {
    if missing.get(i) != Some(&false) {
        return Val::Missing;
    }
    let a = starts.get(i).copied().unwrap_or(0) as usize;
    let b = starts.get(i + 1).copied().unwrap_or(0) as usize;
    Val::Ids(Seq::Borrowed(items.get(a..b.max(a)).unwrap_or(&[])), kind)
}

/// A value that owns its sequences.
fn owned(v: &Val<'_>) -> Val<'static> {
    match v {
        Val::Ids(s, k) => Val::Ids(s.to_vec().into(), *k),
        Val::Nums(s) => Val::Nums(s.to_vec().into()),
        Val::Num(n) => Val::Num(*n),
        Val::Bool(b) => Val::Bool(*b),
        Val::Str(s) => Val::Str(*s),
        Val::Enum(e) => Val::Enum(*e),
        Val::Missing => Val::Missing,
        Val::Abstain => Val::Abstain,
        Val::Text => Val::Text,
    }
}

impl PairBatch {
    /// An empty batch with a column of the right type for every field of every role.
    pub fn new(program: &LabelingProgram) -> Self {
        let columns = program
            .roles
            .iter()
            .flat_map(|r| {
                program
                    .entities
                    .get(r.entity as usize)
                    .map_or(&[][..], |e| &e.fields[..])
            })
            .map(|f| Column::for_type(&f.ty))
            .collect();
        PairBatch {
            ids: Vec::new(),
            columns,
        }
    }

    /// A batch of these pairs.
    pub fn of(program: &LabelingProgram, pairs: impl IntoIterator<Item = Pair>) -> Self {
        let mut batch = PairBatch::new(program);
        for p in pairs {
            batch.push(&p);
        }
        batch
    }

    /// Appends a pair. A value that does not fit its column's type (or a role with more or
    /// fewer fields than the program's) is kept as it is: the column switches to holding values
    /// one by one, so nothing is lost.
    pub fn push(&mut self, pair: &Pair) {
        let n = self.ids.len();
        let mut col = 0;
        for role in &pair.roles {
            for v in role {
                if let Some(c) = self.columns.get_mut(col) {
                    if !c.push(v) {
                        let mut vals = std::mem::replace(c, Column::Vals(Vec::new())).into_vals();
                        vals.truncate(n);
                        vals.push(owned(v));
                        *c = Column::Vals(vals);
                    }
                } else {
                    let mut vals = vec![Val::Missing; n];
                    vals.push(owned(v));
                    self.columns.push(Column::Vals(vals));
                }
                col += 1;
            }
        }
        // Fields the pair does not have read as missing.
        for c in self.columns.iter_mut().skip(col) {
            if !c.push(&Val::Missing) {
                let mut vals = std::mem::replace(c, Column::Vals(Vec::new())).into_vals();
                vals.truncate(n);
                vals.push(Val::Missing);
                *c = Column::Vals(vals);
            }
        }
        self.ids.push(pair.id.clone());
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Pair `i`'s id.
    pub fn id(&self, i: usize) -> &str {
        self.ids.get(i).map_or("", String::as_str)
    }

    pub(super) fn column(&self, i: usize) -> Option<&Column> {
        self.columns.get(i)
    }

    /// Empties the batch, keeping its columns' types and allocations.
    pub fn clear(&mut self) {
        self.ids.clear();
        for c in &mut self.columns {
            match c {
                Column::Num(v) => v.clear(),
                Column::Bool(v) => v.clear(),
                Column::Id { ids, .. } => ids.clear(),
                Column::Ids {
                    starts,
                    items,
                    missing,
                    ..
                } => {
                    starts.truncate(1);
                    items.clear();
                    missing.clear();
                }
                Column::Nums {
                    starts,
                    items,
                    missing,
                } => {
                    starts.truncate(1);
                    items.clear();
                    missing.clear();
                }
                Column::Text(v) => v.clear(),
                Column::Vals(v) => v.clear(),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pair(id: &str, roles: Vec<Vec<Val<'static>>>) -> Pair {
        Pair {
            id: id.to_string(),
            roles,
        }
    }

    fn program() -> LabelingProgram {
        let json = serde_json::json!({
            "schema": "rubric.labeling-program/2",
            "policy": {"name": "t", "version": 1, "hash": ""},
            "entities": [{"name": "E", "fields": [
                {"name": "n", "type": {"kind": "number"}, "optional": true},
                {"name": "b", "type": {"kind": "bool"}, "optional": true},
                {"name": "s", "type": {"kind": "string"}, "optional": true},
                {"name": "tags", "type": {"kind": "set", "of": {"kind": "string"}}, "optional": true},
                {"name": "xs", "type": {"kind": "list", "of": {"kind": "number"}}, "optional": false},
                {"name": "t", "type": {"kind": "text"}, "optional": true}
            ]}],
            "roles": [{"name": "q", "entity": 0}],
            "enums": [], "strings": [], "tables": [], "functions": [], "dimensions": [],
            "rules": [], "overall": {"min_coverage": 0.0, "grades": [], "excluded_grade": "excluded"}, "clauses": []
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_batch_gives_back_every_value_it_was_given() {
        let program = program();
        let pairs = vec![
            pair(
                "a",
                vec![vec![
                    Val::Num(1.5),
                    Val::Bool(true),
                    Val::Str(3),
                    Val::Ids(vec![1, 4].into(), Kind::Set),
                    Val::Nums(vec![2.0, 1.0].into()),
                    Val::Text,
                ]],
            ),
            pair(
                "b",
                vec![vec![
                    Val::Missing,
                    Val::Missing,
                    Val::Missing,
                    Val::Missing,
                    Val::Nums(Vec::new().into()),
                    Val::Missing,
                ]],
            ),
            // A value of the wrong type: its column keeps values one by one from then on.
            pair(
                "c",
                vec![vec![
                    Val::Str(7),
                    Val::Bool(false),
                    Val::Str(0),
                    Val::Ids(vec![9].into(), Kind::Set),
                    Val::Nums(vec![3.0].into()),
                    Val::Text,
                ]],
            ),
        ];
        let mut batch = PairBatch::of(&program, pairs.clone());
        assert_eq!(batch.len(), 3);
        for (i, p) in pairs.iter().enumerate() {
            assert_eq!(batch.id(i), p.id);
            for (f, v) in p.roles[0].iter().enumerate() {
                assert_eq!(&batch.column(f).unwrap().val(i), v, "pair {i} field {f}");
            }
        }
        assert!(matches!(batch.column(0), Some(Column::Vals(_))));
        assert!(matches!(batch.column(3), Some(Column::Ids { .. })));
        batch.clear();
        assert!(batch.is_empty());
        batch.push(&pairs[1]);
        assert_eq!(batch.column(3).unwrap().val(0), Val::Missing);
    }

    #[test]
    fn a_pair_with_fewer_fields_reads_missing_for_the_rest() {
        let program = program();
        let batch = PairBatch::of(&program, [pair("a", vec![vec![Val::Num(2.0)]])]);
        assert_eq!(batch.column(0).unwrap().val(0), Val::Num(2.0));
        assert_eq!(batch.column(4).unwrap().val(0), Val::Missing);
    }
}
