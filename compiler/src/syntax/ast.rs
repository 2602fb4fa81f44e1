//! The typed syntax tree of a policy file: every node carries the span it was parsed from, doc
//! comments are kept on the items they document, and nothing here is resolved or checked yet.

use crate::source::Span;

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// The `///` lines in front of an item, without their slashes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Docs {
    pub lines: Vec<String>,
    pub span: Option<Span>,
}

impl Docs {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A `//` comment, kept as trivia for the formatter.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceTree {
    pub items: Vec<TopItem>,
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TopItem {
    Policy(PolicyDecl),
    Module(ModuleDecl),
    Pipeline(PipelineDecl),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDecl {
    pub docs: Docs,
    pub name: Ident,
    pub version: u64,
    pub items: Vec<Item>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModuleDecl {
    pub docs: Docs,
    pub path: ModulePath,
    pub items: Vec<Item>,
    pub span: Span,
}

/// A dotted module path as written (`std.text`); kept raw so the resolver can refuse `..` or `/`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModulePath {
    pub raw: String,
    pub span: Span,
}

impl ModulePath {
    pub fn segments(&self) -> Vec<&str> {
        self.raw.split('.').collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(UseDecl),
    Entity(EntityDecl),
    Enum(EnumDecl),
    Pair(PairDecl),
    Table(TableDecl),
    Fn(FnDecl),
    Dimension(DimensionDecl),
    Rule(RuleDecl),
    OverallGrade(GradeBlock),
    Example(ExampleDecl),
    MinCoverage(MinCoverageDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Use(d) => d.span,
            Item::Entity(d) => d.span,
            Item::Enum(d) => d.span,
            Item::Pair(d) => d.span,
            Item::Table(d) => d.span,
            Item::Fn(d) => d.span,
            Item::Dimension(d) => d.span,
            Item::Rule(d) => d.span,
            Item::OverallGrade(d) => d.span,
            Item::Example(d) => d.span,
            Item::MinCoverage(d) => d.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    pub docs: Docs,
    pub path: ModulePath,
    pub names: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EntityDecl {
    pub docs: Docs,
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub docs: Docs,
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

/// A type as written: `number`, `set<string>`, `Seniority?`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub name: Ident,
    pub arg: Option<Box<TypeExpr>>,
    pub optional: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EnumDecl {
    pub docs: Docs,
    pub name: Ident,
    pub variants: Vec<Variant>,
    /// `a < b < c` declares an ordered enum (lowest first); `a, b, c` an unordered one.
    pub ordered: bool,
    /// Set when the separators mix `,` and `<`; the checker reports it.
    pub mixed_separators: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub docs: Docs,
    pub name: Ident,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PairDecl {
    pub docs: Docs,
    pub query: Role,
    pub candidate: Role,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub name: Ident,
    pub entity: Ident,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableDecl {
    pub docs: Docs,
    pub name: Ident,
    pub keys: Vec<TypeExpr>,
    pub value: TypeExpr,
    pub default: Literal,
    pub entries: Vec<TableEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableEntry {
    pub keys: Vec<Literal>,
    pub value: Literal,
    pub span: Span,
}

/// A literal value in a table, an example record or a declared range.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LiteralKind {
    Number(f64),
    /// A percent, stored as a fraction (`40%` is 0.4).
    Percent(f64),
    String(String),
    Bool(bool),
    /// A bare or qualified name: an enum value (`senior`, `Seniority.senior`).
    Name(Vec<Ident>),
    List(Vec<Literal>),
    Abstain,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub docs: Docs,
    pub name: Ident,
    pub params: Vec<Param>,
    pub result: TypeExpr,
    pub declared_range: Option<DeclaredRange>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeclaredRange {
    pub lo: f64,
    pub hi: f64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DimensionDecl {
    pub docs: Docs,
    pub name: Ident,
    /// The weight as a fraction (`40%` is 0.4), with the span of the percent.
    pub weight: f64,
    pub weight_span: Span,
    pub lets: Vec<LetStmt>,
    pub score: Vec<ScoreStmt>,
    pub grades: Vec<GradeBlock>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LetStmt {
    pub docs: Docs,
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScoreStmt {
    pub docs: Docs,
    pub value: Expr,
    pub span: Span,
}

/// Grade bands: of a dimension (`grade { ... }`) or of the overall score (`grade overall { ... }`).
#[derive(Clone, Debug, PartialEq)]
pub struct GradeBlock {
    pub docs: Docs,
    pub bands: Vec<Band>,
    /// The span of the `grade` (or `grade overall`) keyword(s).
    pub head: Span,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub docs: Docs,
    pub name: Ident,
    /// `None` for `otherwise`.
    pub condition: Option<Expr>,
    pub description: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleDecl {
    pub docs: Docs,
    pub name: Ident,
    pub condition: Expr,
    pub action: RuleAction,
    pub action_span: Span,
    pub because: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleAction {
    Cap(f64),
    Floor(f64),
    Exclude,
    SetGrade(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct MinCoverageDecl {
    pub value: f64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExampleDecl {
    pub docs: Docs,
    pub name: String,
    pub name_span: Span,
    pub records: Vec<ExampleRecord>,
    pub expectations: Vec<Expectation>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExampleRecord {
    pub role: Ident,
    pub fields: Vec<RecordField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordField {
    pub name: Ident,
    pub value: Literal,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expectation {
    /// `expect skill_match.grade == strong`, `expect overall >= 0.85`.
    Compare {
        target: ExpectTarget,
        op: CompareOp,
        value: Literal,
        span: Span,
    },
    /// `expect rule onsite_needs_presence fires` / `does not fire`.
    Rule {
        rule: Ident,
        fires: bool,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExpectTarget {
    /// `None` for `overall`.
    pub dimension: Option<Ident>,
    pub grade: bool,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Number(f64),
    /// Stored as a fraction: `40%` is 0.4.
    Percent(f64),
    /// Stored in milliseconds.
    Duration(f64),
    String(String),
    Bool(bool),
    Abstain,
    List(Vec<Expr>),
    /// `x`, `query.skills`, `Seniority.senior`.
    Path(Vec<Ident>),
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    Lookup {
        table: Ident,
        keys: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Match {
        scrutinee: Box<Expr>,
        arms: Vec<MatchArm>,
    },
    When {
        arms: Vec<WhenArm>,
        otherwise: Option<Box<Expr>>,
    },
    Paren(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Coalesce,
    Union,
    Intersect,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Coalesce => "??",
            BinaryOp::Union => "|",
            BinaryOp::Intersect => "&",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MatchArm {
    /// Empty for the catch-all `_`.
    pub patterns: Vec<Literal>,
    pub body: Expr,
    pub span: Span,
}

impl MatchArm {
    pub fn is_wildcard(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WhenArm {
    pub condition: Expr,
    pub body: Expr,
    pub span: Span,
}

// ---------------------------------------------------------------------------------------------
// Pipelines

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineDecl {
    pub docs: Docs,
    pub name: Ident,
    pub policy: Ident,
    pub data: Vec<DataBlock>,
    pub teachers: Vec<TeacherDecl>,
    pub students: Vec<StudentDecl>,
    pub quantize: Vec<QuantizeDecl>,
    pub monitors: Vec<MonitorDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataBlock {
    pub sources: Vec<DataSource>,
    pub synthetic: Vec<SyntheticDecl>,
    pub mixes: Vec<MixDecl>,
    pub splits: Vec<SplitDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub name: Ident,
    pub path: String,
    pub path_span: Span,
    /// `unlabeled NAME "path"`: pairs with no label, for the student's teachers to score.
    pub unlabeled: bool,
    pub clean: Vec<CleanRule>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CleanRule {
    DropWhen {
        name: Ident,
        condition: Expr,
        span: Span,
    },
    OutliersSigma {
        field: Ident,
        sigma: f64,
        span: Span,
    },
    OutliersQuantile {
        field: Ident,
        quantile: f64,
        span: Span,
    },
    Duplicates {
        on: Vec<Ident>,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticDecl {
    pub from: Ident,
    pub settings: Vec<Setting>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MixDecl {
    pub shares: Vec<(Ident, f64, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SplitDecl {
    pub validation: f64,
    pub validation_span: Span,
    pub seed: Option<u64>,
    pub span: Span,
}

/// `key value` inside `{ ... }`: model sizes, training settings, synthesis settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: Ident,
    pub value: SettingValue,
    pub value_span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    Number(f64),
    Percent(f64),
    Duration(f64),
    String(String),
    Bool(bool),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    Encoder {
        settings: Vec<Setting>,
        span: Span,
    },
    Init {
        path: String,
        span: Span,
    },
    /// `model from teacher NAME`: a teacher's trained weights, declared before it.
    FromTeacher {
        teacher: Ident,
        span: Span,
    },
}

impl ModelSpec {
    pub fn span(&self) -> Span {
        match self {
            ModelSpec::Encoder { span, .. }
            | ModelSpec::Init { span, .. }
            | ModelSpec::FromTeacher { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TeacherDecl {
    pub docs: Docs,
    pub name: Ident,
    pub model: Vec<ModelSpec>,
    pub predicts: Vec<Ident>,
    pub loss: Option<LossDecl>,
    pub train: Vec<Setting>,
    pub regularize: Vec<Setting>,
    /// `reads [...]`: the text fields the model reads (`query.title`); empty: the default, or
    /// no text at all when the statement is written (`reads []`, see `reads_span`).
    pub reads: Vec<Ident>,
    /// Where `reads [...]` is written, when it is.
    pub reads_span: Option<Span>,
    /// `features [...]`: structured fields and context names joined before the heads.
    pub features: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LossDecl {
    pub kind: Ident,
    pub temperature: Option<(f64, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StudentDecl {
    pub docs: Docs,
    pub model: Vec<ModelSpec>,
    pub distill: Vec<DistillDecl>,
    /// `learn rubric|SOURCE weight W loss L`: ground-truth terms.
    pub learn: Vec<LearnDecl>,
    pub drift: Vec<DriftDecl>,
    pub regularize: Vec<Setting>,
    pub early_stop: Option<EarlyStopDecl>,
    pub train: Vec<Setting>,
    pub reads: Vec<Ident>,
    /// Where `reads [...]` is written, when it is.
    pub reads_span: Option<Span>,
    pub features: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DistillDecl {
    pub teacher: Ident,
    pub weight: f64,
    pub weight_span: Span,
    pub loss: LossDecl,
    pub span: Span,
}

/// `learn rubric weight W loss L` (the rubric's own labels of the pairs) or `learn SOURCE weight W
/// loss L` (the clicks of a declared click log): a term on the ground truth, beside the teachers.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnDecl {
    pub from: Ident,
    pub weight: f64,
    pub weight_span: Span,
    pub loss: LossDecl,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DriftDecl {
    pub weight: f64,
    pub weight_span: Span,
    pub tolerance: f64,
    pub tolerance_span: Span,
    pub rebalance_every: Option<(u64, Span)>,
    pub against: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopDecl {
    pub metric: Ident,
    pub patience: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeDecl {
    pub scheme: Ident,
    pub prune_heads_below: Option<(f64, Span)>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MonitorDecl {
    pub alerts: Vec<AlertDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlertDecl {
    pub metric: Ident,
    pub op: CompareOp,
    pub threshold: Threshold,
    pub threshold_span: Span,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Number(f64),
    Percent(f64),
    /// Milliseconds.
    Duration(f64),
}
