//! The fast path of the decoder: reads a JSON line straight into a pair, driven by the policy's
//! entity schemas (serde's `DeserializeSeed`), without building a `serde_json::Value` first.
//! Anything unusual (a type mismatch, a missing field, a duplicate key, a numeric id) makes it
//! give up, and the checked decoder then reads the line again and names the problem: both accept
//! exactly the same rows with the same result, and this one is only ever faster.

use super::decode::Pair;
use super::value::{Interner, Kind, Seq, Val};
use rubric_compiler::lower::ir::{EnumSchema, LabelingProgram, ValueType};
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

/// Role and field names, resolved once per decoder.
pub(super) struct Schemas {
    roles: FxHashMap<String, usize>,
    /// Per entity: field name → position.
    fields: Vec<FxHashMap<String, usize>>,
}

impl Schemas {
    pub(super) fn new(program: &LabelingProgram) -> Self {
        Schemas {
            roles: program
                .roles
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect(),
            fields: program
                .entities
                .iter()
                .map(|e| {
                    e.fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (f.name.clone(), i))
                        .collect()
                })
                .collect(),
        }
    }
}

/// Decodes a line, or `None` when the checked decoder must look at it.
pub(super) fn decode(
    program: &LabelingProgram,
    schemas: &Schemas,
    line: &str,
    strings: &mut Interner<'_>,
) -> Option<Pair> {
    let mut de = serde_json::Deserializer::from_str(line);
    let pair = PairSeed {
        program,
        schemas,
        strings,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(pair)
}

thread_local! {
    /// Scratch for the items of a set or list being read, reused from value to value.
    static IDS: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
    static NUMS: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

fn give_up<E: de::Error>() -> E {
    E::custom("left to the checked decoder")
}

struct PairSeed<'x, 'i> {
    program: &'x LabelingProgram,
    schemas: &'x Schemas,
    strings: &'x mut Interner<'i>,
}

/// A key of the pair object: `id`, a role, or something to skip.
enum TopKey {
    Id,
    Role(usize),
    Other,
}

struct TopKeySeed<'x>(&'x Schemas);

impl<'de> DeserializeSeed<'de> for TopKeySeed<'_> {
    type Value = TopKey;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<TopKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TopKeySeed<'_> {
    type Value = TopKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<TopKey, E> {
        Ok(if k == "id" {
            TopKey::Id
        } else {
            self.0
                .roles
                .get(k)
                .map_or(TopKey::Other, |i| TopKey::Role(*i))
        })
    }
}

/// A string id (a numeric id is left to the checked decoder, which formats it).
struct IdSeed;

impl<'de> DeserializeSeed<'de> for IdSeed {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for IdSeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_string())
    }
}

impl<'de> DeserializeSeed<'de> for PairSeed<'_, '_> {
    type Value = Pair;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Pair, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_, '_> {
    type Value = Pair;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pair")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pair, A::Error> {
        let mut id: Option<String> = None;
        let mut roles: Vec<Option<Vec<Val<'static>>>> = vec![None; self.program.roles.len()];
        while let Some(key) = map.next_key_seed(TopKeySeed(self.schemas))? {
            match key {
                TopKey::Id => {
                    if id.is_some() {
                        return Err(give_up());
                    }
                    id = Some(map.next_value_seed(IdSeed)?);
                }
                TopKey::Role(r) => {
                    let entity = self
                        .program
                        .roles
                        .get(r)
                        .map(|role| role.entity as usize)
                        .ok_or_else(give_up)?;
                    let slot = roles.get_mut(r).ok_or_else(give_up)?;
                    if slot.is_some() {
                        return Err(give_up());
                    }
                    *slot = Some(map.next_value_seed(RecordSeed {
                        program: self.program,
                        entity,
                        names: self.schemas.fields.get(entity).ok_or_else(give_up)?,
                        strings: &mut *self.strings,
                    })?);
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let roles: Option<Vec<Vec<Val<'static>>>> = roles.into_iter().collect();
        match (id, roles) {
            (Some(id), Some(roles)) => Ok(Pair { id, roles }),
            _ => Err(give_up()),
        }
    }
}

/// One role's record: its fields in the entity's order.
struct RecordSeed<'x, 'i> {
    program: &'x LabelingProgram,
    entity: usize,
    names: &'x FxHashMap<String, usize>,
    strings: &'x mut Interner<'i>,
}

struct FieldKeySeed<'x>(&'x FxHashMap<String, usize>);

impl<'de> DeserializeSeed<'de> for FieldKeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Option<usize>, E> {
        Ok(self.0.get(k).copied())
    }
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = Vec<Val<'static>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = Vec<Val<'static>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let schema = self.program.entities.get(self.entity).ok_or_else(give_up)?;
        // Unset fields hold `Abstain` (no decoded value is one), a `null` holds `Missing`.
        let mut fields: Vec<Val<'static>> = vec![Val::Abstain; schema.fields.len()];
        while let Some(key) = map.next_key_seed(FieldKeySeed(self.names))? {
            let Some(i) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let (Some(field), Some(slot)) = (schema.fields.get(i), fields.get_mut(i)) else {
                return Err(give_up());
            };
            if !matches!(slot, Val::Abstain) {
                // A duplicate key: the checked decoder applies its rule.
                return Err(give_up());
            }
            *slot = map
                .next_value_seed(ValueSeed {
                    program: self.program,
                    ty: &field.ty,
                    strings: &mut *self.strings,
                })?
                .unwrap_or(Val::Missing);
        }
        // Absent or null: missing when optional, carried when text; anything else is an error
        // the checked decoder words.
        for (f, v) in schema.fields.iter().zip(fields.iter_mut()) {
            if matches!(v, Val::Abstain | Val::Missing) {
                *v = if f.optional {
                    Val::Missing
                } else if f.ty == ValueType::Text {
                    Val::Text
                } else {
                    return Err(give_up());
                };
            }
        }
        Ok(fields)
    }
}

/// One field's value of a known type; `None` for `null`.
struct ValueSeed<'x, 'i> {
    program: &'x LabelingProgram,
    ty: &'x ValueType,
    strings: &'x mut Interner<'i>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Option<Val<'static>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn enum_position(schema: Option<&EnumSchema>, s: &str) -> Option<u32> {
    schema?
        .values
        .iter()
        .position(|v| v == s)
        .and_then(|p| u32::try_from(p).ok())
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Option<Val<'static>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        match self.ty {
            ValueType::Number if n.is_finite() => Ok(Some(Val::Num(n))),
            _ => Err(give_up()),
        }
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        self.visit_f64(n as f64)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        self.visit_f64(n as f64)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        match self.ty {
            ValueType::Bool => Ok(Some(Val::Bool(b))),
            _ => Err(give_up()),
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        match self.ty {
            ValueType::String => Ok(Some(Val::Str(self.strings.intern(s)))),
            ValueType::Text => Ok(Some(Val::Text)),
            ValueType::Enum { index } => enum_position(self.program.enums.get(*index as usize), s)
                .map(|p| Some(Val::Enum(p)))
                .ok_or_else(give_up),
            _ => Err(give_up()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (kind, of) = match self.ty {
            ValueType::Set { of } => (Kind::Set, &**of),
            ValueType::List { of } => (Kind::List, &**of),
            _ => return Err(give_up()),
        };
        if *of == ValueType::Number {
            let mut nums = NUMS.take();
            nums.clear();
            while let Some(v) = seq.next_element_seed(ValueSeed {
                program: self.program,
                ty: of,
                strings: &mut *self.strings,
            })? {
                match v {
                    Some(Val::Num(n)) => nums.push(n),
                    _ => return Err(give_up()),
                }
            }
            if kind == Kind::Set {
                nums.sort_by(f64::total_cmp);
                nums.dedup();
            }
            let shared: Arc<[f64]> = Arc::from(&nums[..]);
            NUMS.set(nums);
            return Ok(Some(Val::Nums(Seq::Shared(shared))));
        }
        // Items gather in this thread's scratch vector; the value gets one exact allocation.
        let mut ids = IDS.take();
        ids.clear();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            program: self.program,
            ty: of,
            strings: &mut *self.strings,
        })? {
            match v {
                Some(Val::Str(id) | Val::Enum(id)) => ids.push(id),
                _ => return Err(give_up()),
            }
        }
        if kind == Kind::Set {
            ids.sort_unstable();
            ids.dedup();
        }
        let shared: Arc<[u32]> = Arc::from(&ids[..]);
        IDS.set(ids);
        Ok(Some(Val::Ids(Seq::Shared(shared), kind)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::decode::{Decoder, Pair, RowError};
    use super::super::value::{BaseStrings, Interner, Kind, Val};
    use crate::compile::compile_file;
    use crate::random_pairs::PairGenerator;
    use rubric_compiler::Options;
    use rubric_compiler::lower::ir::LabelingProgram;
    use std::path::Path;

    fn program() -> LabelingProgram {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/job_match.policy");
        compile_file(&path, &Options::default())
            .expect("job_match compiles")
            .lowered
            .labeling
    }

    /// A pair with every interned id spelled out, sets in text order: interners may number the
    /// same strings differently.
    fn spelled(pair: &Pair, strings: &Interner<'_>) -> String {
        let mut out = format!("{}:", pair.id);
        for role in &pair.roles {
            for v in role {
                let text = match v {
                    Val::Str(s) => format!("s{:?}", strings.text(*s)),
                    Val::Ids(ids, kind) => {
                        let mut items: Vec<&str> = ids.iter().map(|i| strings.text(*i)).collect();
                        if *kind == Kind::Set {
                            items.sort_unstable();
                        }
                        format!("{kind:?}{items:?}")
                    }
                    other => format!("{other:?}"),
                };
                out.push_str(&text);
                out.push('|');
            }
        }
        out
    }

    fn both(
        decoder: &Decoder<'_>,
        base: &BaseStrings,
        line: &str,
    ) -> (Result<String, RowError>, Result<String, RowError>) {
        let mut a = Interner::new(base);
        let mut b = Interner::new(base);
        let fast = decoder.decode(7, line, &mut a).map(|p| spelled(&p, &a));
        let checked = decoder
            .decode_checked(7, line, &mut b)
            .map(|p| spelled(&p, &b));
        (fast, checked)
    }

    #[test]
    fn the_fast_path_agrees_with_the_checked_decoder_on_generated_pairs() {
        let program = program();
        let base = BaseStrings::new(&program.strings);
        let decoder = Decoder::new(&program);
        let schemas = super::Schemas::new(&program);
        let mut generator = PairGenerator::new(&program, 11);
        let mut taken = 0;
        for _ in 0..2000 {
            let line = generator.pair().to_string();
            let mut strings = Interner::new(&base);
            if super::decode(&program, &schemas, &line, &mut strings).is_some() {
                taken += 1;
            }
            let (fast, checked) = both(&decoder, &base, &line);
            assert_eq!(fast, checked, "{line}");
        }
        // Generated pairs are well formed: the fast path takes every one.
        assert_eq!(taken, 2000);
    }

    #[test]
    fn rows_the_fast_path_leaves_get_the_checked_decoders_answer() {
        let program = program();
        let base = BaseStrings::new(&program.strings);
        let decoder = Decoder::new(&program);
        let mut generator = PairGenerator::new(&program, 5);
        let good: serde_json::Value = generator.pair();
        let text = good.to_string();
        let mut variants: Vec<String> = vec![
            // A numeric id, formatted by the checked decoder.
            text.replacen(&format!("\"id\":{}", good["id"]), "\"id\":12.5", 1),
            // Duplicate keys: the last one wins.
            text.replacen('{', "{\"id\":\"first\",", 1),
            // Extra keys anywhere, escaped strings, nulls, wrong types, trailing garbage.
            text.replacen('{', "{\"extra\":[1,{\"a\":null}],", 1),
            format!("{text} x"),
            "[]".to_string(),
            "{}".to_string(),
            "{\"id\":\"x\"}".to_string(),
            "not json".to_string(),
        ];
        for role in ["query", "candidate"] {
            let record = good[role].as_object().unwrap();
            for field in record.keys() {
                for replacement in [
                    serde_json::Value::Null,
                    serde_json::json!(true),
                    serde_json::json!(3),
                    serde_json::json!("esc\u{e9}\\\"aped"),
                    serde_json::json!(["a", null]),
                    serde_json::json!([1, 2]),
                ] {
                    let mut v = good.clone();
                    v[role][field] = replacement;
                    variants.push(v.to_string());
                }
                let mut v = good.clone();
                v[role].as_object_mut().unwrap().remove(field);
                variants.push(v.to_string());
            }
        }
        for line in &variants {
            let (fast, checked) = both(&decoder, &base, line);
            assert_eq!(fast, checked, "{line}");
        }
    }
}
