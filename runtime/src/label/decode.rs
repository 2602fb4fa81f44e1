//! Decodes one JSON line into a pair of records, checked against the policy's entity schemas.
//! A bad row is an error that names its line and the field path (`candidate.skills[2]`).

use super::fast_decode::{self, Schemas};
use super::value::{Interner, Kind, Val, to_set};
use rubric_compiler::lower::ir::{EnumSchema, LabelingProgram, ValueType};
use serde_json::Value;
use std::fmt;

/// One decoded pair.
#[derive(Clone, Debug)]
pub struct Pair {
    pub id: String,
    /// Field values of each role, in the program's role and field order.
    pub roles: Vec<Vec<Val<'static>>>,
}

/// Why a row could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// One-based line number in the input.
    pub line: u64,
    /// The field path, such as `candidate.skills[2]`; empty for the row as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: `{}`: {}", self.line, self.path, self.message)
        }
    }
}

impl std::error::Error for RowError {}

/// Rows longer than this are refused before parsing (a guard against a runaway line).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A JSON value in words, for an error message: `the string "x"`, `a list`, ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("the string \"{short}\"")
        }
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

pub struct Decoder<'p> {
    program: &'p LabelingProgram,
    schemas: Schemas,
}

impl<'p> Decoder<'p> {
    pub fn new(program: &'p LabelingProgram) -> Self {
        Decoder {
            program,
            schemas: Schemas::new(program),
        }
    }

    /// Decodes one line (without its newline).
    pub fn decode(
        &self,
        line_no: u64,
        line: &str,
        strings: &mut Interner<'_>,
    ) -> Result<Pair, RowError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(RowError {
                line: line_no,
                path: String::new(),
                message: format!(
                    "the row is {} bytes, more than the limit of {MAX_LINE_BYTES}",
                    line.len()
                ),
            });
        }
        // Most rows are well formed: read them straight into a pair. A row the fast path does
        // not take is read again, checked, and its problem named.
        if let Some(pair) = fast_decode::decode(self.program, &self.schemas, line, strings) {
            return Ok(pair);
        }
        self.decode_checked(line_no, line, strings)
    }

    /// Decodes one line through a `serde_json::Value`, naming any problem it finds.
    pub(super) fn decode_checked(
        &self,
        line_no: u64,
        line: &str,
        strings: &mut Interner<'_>,
    ) -> Result<Pair, RowError> {
        let err = |path: String, message: String| RowError {
            line: line_no,
            path,
            message,
        };
        let value: Value = serde_json::from_str(line)
            .map_err(|e| err(String::new(), format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(err(
                String::new(),
                format!("expected an object, found {}", describe(&value)),
            ));
        };
        let id = match map.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(err(
                    "id".to_string(),
                    format!("expected a string, found {}", describe(other)),
                ));
            }
            None => {
                return Err(err(
                    "id".to_string(),
                    "missing: every pair needs an `id`".to_string(),
                ));
            }
        };
        let mut roles = Vec::with_capacity(self.program.roles.len());
        for role in &self.program.roles {
            let Some(entity) = self.program.entities.get(role.entity as usize) else {
                return Err(err(
                    role.name.clone(),
                    "the program has no entity for this role".to_string(),
                ));
            };
            let record = match map.get(&role.name) {
                Some(Value::Object(r)) => r,
                Some(other) => {
                    return Err(err(
                        role.name.clone(),
                        format!("expected an object, found {}", describe(other)),
                    ));
                }
                None => {
                    return Err(err(
                        role.name.clone(),
                        format!("missing: the `{}` record", entity.name),
                    ));
                }
            };
            let mut fields = Vec::with_capacity(entity.fields.len());
            for field in &entity.fields {
                // The field's path is only built for an error: this loop runs for every field.
                let path = |suffix: &str| format!("{}.{}{suffix}", role.name, field.name);
                let val = match record.get(&field.name) {
                    None | Some(Value::Null) => {
                        if field.optional {
                            Val::Missing
                        } else if field.ty == ValueType::Text {
                            Val::Text
                        } else {
                            return Err(err(
                                path(""),
                                format!(
                                    "missing: a required `{}`",
                                    type_name(&field.ty, self.program)
                                ),
                            ));
                        }
                    }
                    Some(v) => self
                        .value(v, &field.ty, strings)
                        .map_err(|(suffix, m)| err(path(&suffix), m))?,
                };
                fields.push(val);
            }
            roles.push(fields);
        }
        Ok(Pair { id, roles })
    }

    /// A field's value; an error is (the path below the field, such as `[2]`, and a message).
    fn value(
        &self,
        v: &Value,
        ty: &ValueType,
        strings: &mut Interner<'_>,
    ) -> Result<Val<'static>, (String, String)> {
        let wrong = |want: &str| {
            (
                String::new(),
                format!("expected {want}, found {}", describe(v)),
            )
        };
        match ty {
            ValueType::Number => match v.as_f64() {
                Some(n) if n.is_finite() => Ok(Val::Num(n)),
                _ => Err(wrong("a number")),
            },
            ValueType::Bool => v
                .as_bool()
                .map(Val::Bool)
                .ok_or_else(|| wrong("`true` or `false`")),
            ValueType::String => v
                .as_str()
                .map(|s| Val::Str(strings.intern(s)))
                .ok_or_else(|| wrong("a string")),
            ValueType::Text => v
                .as_str()
                .map(|_| Val::Text)
                .ok_or_else(|| wrong("a string")),
            ValueType::Enum { index } => {
                let schema = self.enum_schema(*index);
                let Some(s) = v.as_str() else {
                    return Err(wrong(&format!(
                        "one of the values of `{}`",
                        schema.map_or("", |e| e.name.as_str())
                    )));
                };
                enum_position(schema, s).map(Val::Enum).ok_or_else(|| {
                    let values = schema.map(|e| e.values.join(", ")).unwrap_or_default();
                    (
                        String::new(),
                        format!(
                            "`{s}` is not a value of `{}` (one of: {values})",
                            schema.map_or("", |e| e.name.as_str())
                        ),
                    )
                })
            }
            ValueType::Set { of } | ValueType::List { of } => {
                let kind = if matches!(ty, ValueType::Set { .. }) {
                    Kind::Set
                } else {
                    Kind::List
                };
                let Some(items) = v.as_array() else {
                    return Err(wrong("a list"));
                };
                if **of == ValueType::Number {
                    let mut nums = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        match item.as_f64() {
                            Some(n) if n.is_finite() => nums.push(n),
                            _ => {
                                return Err((
                                    format!("[{i}]"),
                                    format!("expected a number, found {}", describe(item)),
                                ));
                            }
                        }
                    }
                    if kind == Kind::Set {
                        nums.sort_by(f64::total_cmp);
                        nums.dedup();
                    }
                    return Ok(Val::Nums(nums.into()));
                }
                let mut ids = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match self
                        .value(item, of, strings)
                        .map_err(|(_, m)| (format!("[{i}]"), m))?
                    {
                        Val::Str(id) | Val::Enum(id) => ids.push(id),
                        _ => {
                            return Err((
                                format!("[{i}]"),
                                format!("expected a string, found {}", describe(item)),
                            ));
                        }
                    }
                }
                let ids = if kind == Kind::Set { to_set(ids) } else { ids };
                Ok(Val::Ids(ids.into(), kind))
            }
        }
    }

    fn enum_schema(&self, index: u32) -> Option<&'p EnumSchema> {
        self.program.enums.get(index as usize)
    }
}

fn enum_position(schema: Option<&EnumSchema>, s: &str) -> Option<u32> {
    schema?
        .values
        .iter()
        .position(|v| v == s)
        .and_then(|p| u32::try_from(p).ok())
}

fn type_name(ty: &ValueType, program: &LabelingProgram) -> String {
    match ty {
        ValueType::Number => "number".to_string(),
        ValueType::Bool => "bool".to_string(),
        ValueType::String => "string".to_string(),
        ValueType::Text => "text".to_string(),
        ValueType::Enum { index } => program
            .enums
            .get(*index as usize)
            .map_or("enum".to_string(), |e| e.name.clone()),
        ValueType::Set { of } => format!("set<{}>", type_name(of, program)),
        ValueType::List { of } => format!("list<{}>", type_name(of, program)),
    }
}
