//! The labeling program: what the compiler lowers a policy's rubric to and the runtime executes.
//! Plain, versioned serde data. Names are resolved to indices, string literals are interned,
//! and every node can be found in the source map by its path (`dimensions[0].score.then`).

use serde::{Deserialize, Serialize};

/// The schema of this artefact; bumped on any incompatible change.
pub const LABELING_SCHEMA: &str = "rubric.labeling-program/2";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelingProgram {
    pub schema: String,
    pub policy: PolicyRef,
    /// The entities the pair's roles have, with their fields: the schema records are checked
    /// against.
    pub entities: Vec<EntitySchema>,
    /// The query role first, then the candidate role.
    pub roles: Vec<RoleSchema>,
    pub enums: Vec<EnumSchema>,
    /// String literals of the policy, interned: `Const::Str(i)` is `strings[i]`.
    pub strings: Vec<String>,
    pub tables: Vec<TableIr>,
    pub functions: Vec<FunctionIr>,
    /// One labeling function per dimension, in declaration order.
    pub dimensions: Vec<LabelingFunction>,
    pub rules: Vec<RuleIr>,
    pub overall: OverallIr,
    /// Every clause an example or a dataset can exercise: grade bands, `match` arms, `when`
    /// branches, `if` branches and rules. Nodes refer to them by index.
    pub clauses: Vec<Clause>,
}

/// Which policy a program (or any artefact downstream) was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub name: String,
    pub version: u64,
    /// SHA-256 of the policy's canonical form (its meaning, without layout, comments or docs).
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntitySchema {
    pub name: String,
    pub fields: Vec<FieldSchema>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ValueType,
    pub optional: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleSchema {
    pub name: String,
    /// Index into `entities`.
    pub entity: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumSchema {
    pub name: String,
    pub values: Vec<String>,
    pub ordered: bool,
}

/// The type of a value in a record or an expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ValueType {
    Number,
    Bool,
    String,
    /// Free text: carried to the models, never read by the rubric.
    Text,
    Enum {
        index: u32,
    },
    Set {
        of: Box<ValueType>,
    },
    List {
        of: Box<ValueType>,
    },
}

/// A constant value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Const {
    Number(f64),
    Bool(bool),
    /// An interned string literal.
    Str(u32),
    /// An enum value: (enum index, value index).
    Enum(u32, u32),
    List(Vec<Const>),
    Abstain,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableIr {
    pub name: String,
    pub keys: Vec<ValueType>,
    pub value: ValueType,
    pub default: Const,
    pub entries: Vec<TableEntryIr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableEntryIr {
    pub keys: Vec<Const>,
    pub value: Const,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionIr {
    /// Qualified: `std.text.coverage`, or the bare name for the policy's own functions.
    pub name: String,
    pub params: Vec<String>,
    /// A declared result range, enforced at run time (clamped and counted).
    pub declared_range: Option<[f64; 2]>,
    pub body: Node,
}

/// One labeling function: a dimension's score (which may abstain) and its grade bands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelingFunction {
    pub name: String,
    pub weight: f64,
    /// `let` bindings, evaluated in order; `Node::Local(i)` reads `lets[i]`.
    pub lets: Vec<LetIr>,
    pub score: Node,
    /// Whether the checker proved the score stays in [0, 1]; if not, the runtime clamps and
    /// counts.
    pub proven_in_range: bool,
    pub grades: Vec<BandIr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LetIr {
    pub name: String,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandIr {
    pub name: String,
    /// `None` for `otherwise`.
    pub when: Option<Node>,
    pub clause: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleIr {
    pub name: String,
    pub when: Node,
    pub action: RuleActionIr,
    pub because: String,
    pub clause: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleActionIr {
    Cap(f64),
    Floor(f64),
    Exclude,
    SetGrade(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverallIr {
    /// Share of the total weight that must vote for the overall score not to abstain.
    pub min_coverage: f64,
    pub grades: Vec<BandIr>,
    /// The grade of a pair an `exclude` rule removed (not a band: the language reserves the
    /// name). Consumers read it here rather than knowing it.
    pub excluded_grade: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clause {
    pub kind: ClauseKind,
    /// Where it is, as a source-map path.
    pub path: String,
    /// A short readable name: `skill_match.grade.strong`, `rule onsite_needs_presence`.
    pub label: String,
    /// Whether it is in the policy's own file (and not in a module it imports).
    pub in_policy: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseKind {
    GradeBand,
    MatchArm,
    WhenBranch,
    IfBranch,
    Rule,
}

/// A native function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    Len,
    Abs,
    Min,
    Max,
    Clamp,
    Lower,
    Contains,
    Rank,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Union,
    Intersect,
    Add,
    /// Subtraction of numbers, or difference of sets.
    Sub,
    Mul,
    Div,
}

/// An expression of the labeling program. Values are dynamically typed at run time; the
/// checker has already proved every operation is applied to the right types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    Const(Const),
    /// A field of a role's record: (role index, field index).
    Field(u32, u32),
    /// A `let` of the dimension being evaluated, or a parameter of the function.
    Local(u32),
    /// The dimension's score, in its grade bands.
    Score,
    /// The overall score before rules, in rules and the overall grade.
    Overall,
    /// Another dimension's score, in rules and the overall grade.
    Dimension(u32),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    /// `value ?? default`.
    Coalesce {
        value: Box<Node>,
        default: Box<Node>,
    },
    Missing(Box<Node>),
    If {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Box<Node>,
        then_clause: u32,
        else_clause: u32,
    },
    When {
        arms: Vec<WhenArmIr>,
        otherwise: Box<Node>,
        otherwise_clause: u32,
    },
    Match {
        scrutinee: Box<Node>,
        arms: Vec<MatchArmIr>,
    },
    Call {
        builtin: Builtin,
        args: Vec<Node>,
    },
    /// A call of `functions[function]`.
    CallFn {
        function: u32,
        args: Vec<Node>,
    },
    Lookup {
        table: u32,
        keys: Vec<Node>,
    },
    List(Vec<Node>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhenArmIr {
    pub when: Node,
    pub then: Node,
    pub clause: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchArmIr {
    /// Empty for `_`.
    pub patterns: Vec<Const>,
    pub then: Node,
    pub clause: u32,
}
