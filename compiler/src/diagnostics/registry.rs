//! The one registry of diagnostic codes: each code's severity, one-line summary and long
//! explanation (`rubric explain CODE`). A code not listed here cannot be reported.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! registry {
    ($( $variant:ident => ($group:ident, $name:ident, $severity:ident, $summary:literal) ),* $(,)?) => {
        /// A stable diagnostic code such as `rubric::check::weights_sum`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => concat!("rubric::", stringify!($group), "::", stringify!($name))),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }

            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary),* }
            }

            /// The long explanation, in Markdown, with an example and the fix.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$variant => include_str!(concat!("explain/", stringify!($group), "/", stringify!($name), ".md"))),*
                }
            }
        }
    };
}

registry! {
    // Syntax
    SyntaxUnexpected => (syntax, unexpected, Error, "the text does not follow the policy language's syntax"),
    SyntaxUnclosed => (syntax, unclosed, Error, "a bracket or brace is opened and never closed, or closed and never opened"),
    SyntaxTooDeep => (syntax, too_deep, Error, "brackets, branches or operators nest deeper than the limit"),
    SyntaxTooLarge => (syntax, too_large, Error, "the file is larger than the limit"),
    SyntaxInvalidLiteral => (syntax, invalid_literal, Error, "a number, percent, duration or string cannot be read"),
    SyntaxNotUtf8 => (syntax, not_utf8, Error, "the file is not UTF-8 text"),
    SyntaxEmptyFile => (syntax, empty_file, Error, "the file holds no policy, module or pipeline"),
    // Names and modules
    UnknownName => (resolve, unknown_name, Error, "a name that is not defined"),
    UnknownField => (resolve, unknown_field, Error, "an entity has no field of this name"),
    UnknownType => (resolve, unknown_type, Error, "a type that is not defined"),
    UnknownEnumValue => (resolve, unknown_enum_value, Error, "an enum has no value of this name"),
    UnknownDimension => (resolve, unknown_dimension, Error, "the policy has no dimension of this name"),
    UnknownGrade => (resolve, unknown_grade, Error, "a grade that no grade band defines"),
    UnknownFunction => (resolve, unknown_function, Error, "a function that is not defined"),
    UnknownModule => (resolve, unknown_module, Error, "an imported module that does not exist"),
    UnknownImport => (resolve, unknown_import, Error, "an imported name that the module does not define"),
    ImportEscape => (resolve, import_escape, Error, "an import that reaches outside the project directory"),
    ImportCycle => (resolve, import_cycle, Error, "modules that import each other in a cycle"),
    Duplicate => (resolve, duplicate, Error, "a name defined twice"),
    AmbiguousName => (resolve, ambiguous_name, Error, "a name that could mean more than one thing"),
    MisplacedItem => (resolve, misplaced_item, Error, "an item where it is not allowed"),
    ModuleName => (resolve, module_name, Error, "a module whose declared name differs from its path"),
    // Types
    TypeMismatch => (check, type_mismatch, Error, "a value of the wrong type"),
    TextInLogic => (check, text_in_logic, Error, "a `text` field used in rubric logic"),
    UnhandledOptional => (check, unhandled_optional, Error, "an optional field used without handling `missing`"),
    Arity => (check, arity, Error, "a call with the wrong number of arguments"),
    AbstainMisplaced => (check, abstain_misplaced, Error, "`abstain` where no dimension score is produced"),
    RecursiveFunction => (check, recursive_function, Error, "a function that calls itself"),
    NotOrdered => (check, not_ordered, Error, "an order used on an enum declared without one"),
    // Dimensions and scores
    WeightsSum => (check, weights_sum, Error, "dimension weights do not add up to 100%"),
    WeightRange => (check, weight_range, Error, "a dimension weight outside (0%, 100%]"),
    ScoreStatement => (check, score_statement, Error, "a dimension without exactly one `score`"),
    ScoreRange => (check, score_range, Error, "a score that can leave [0, 1]"),
    ScoreUnproven => (check, score_unproven, Warning, "a score the checker cannot prove stays in [0, 1]"),
    DeclaredRange => (check, declared_range, Error, "a function result that breaks its declared range"),
    DivisionByZero => (check, division_by_zero, Warning, "a division whose divisor can be zero"),
    DivisionAlwaysZero => (check, division_always_zero, Error, "a division whose divisor is always zero"),
    UnusedLet => (check, unused_let, Warning, "a `let` that nothing reads"),
    UnusedImport => (check, unused_import, Warning, "an imported name that nothing uses"),
    IncompletePolicy => (check, incomplete_policy, Error, "a policy that lacks a part every policy needs"),
    // Grades, branches
    MissingOtherwise => (check, missing_otherwise, Error, "grade bands or a `when` chain without `otherwise`"),
    GradeShadowed => (check, grade_shadowed, Error, "a grade band that earlier bands always win over"),
    GradeOrder => (check, grade_order, Warning, "grade band thresholds out of order"),
    UnreachableArm => (check, unreachable_arm, Error, "a `match` arm that can never be chosen"),
    MatchNotExhaustive => (check, match_not_exhaustive, Error, "a `match` without `_` that does not cover every value"),
    // Rules
    RuleNeverFires => (check, rule_never_fires, Warning, "a rule whose condition can never hold"),
    RuleConflict => (check, rule_conflict, Error, "rules that contradict each other when both fire"),
    RuleConflictsUnchecked => (check, rule_conflicts_unchecked, Warning, "too many pairs of rules that could contradict each other to examine them all"),
    RuleThreshold => (check, rule_threshold, Error, "a cap or floor outside [0, 1]"),
    MissingBecause => (check, missing_because, Error, "a rule without a `because` reason"),
    MinCoverage => (check, min_coverage, Error, "a `min_coverage` outside (0%, 100%]"),
    // Examples
    ExampleField => (check, example_field, Error, "an example field the entity does not have"),
    ExampleValue => (check, example_value, Error, "an example value that does not fit its field"),
    ExampleMissingField => (check, example_missing_field, Error, "an example that omits a required field"),
    ExampleExpectation => (check, example_expectation, Error, "an expectation about no known dimension, grade or rule"),
    // Pipelines
    PipelinePolicy => (pipeline, unknown_policy, Error, "a pipeline for a policy that is not there"),
    UnusedTeacher => (pipeline, unused_teacher, Warning, "a teacher that no student distills from"),
    UnknownTeacher => (pipeline, unknown_teacher, Error, "a student distills from, or a model starts from, a teacher that is not declared (before it)"),
    MixSum => (pipeline, mix_sum, Error, "a data mix whose shares do not add up to 100%"),
    NegativeWeight => (pipeline, negative_weight, Error, "a negative loss or penalty weight"),
    StudentLarger => (pipeline, student_larger, Warning, "a student larger than its teachers"),
    UnknownMetric => (pipeline, unknown_metric, Error, "a metric the runtime does not measure"),
    UnknownSetting => (pipeline, unknown_setting, Error, "a setting the block does not take"),
    InvalidValue => (pipeline, invalid_value, Error, "a setting whose value is out of range"),
    UnknownSource => (pipeline, unknown_source, Error, "a data source that is not declared"),
    ThresholdUnit => (pipeline, threshold_unit, Error, "an alert threshold in the wrong unit"),
    PathEscape => (pipeline, path_escape, Error, "a data path outside the project directory"),
    MissingPart => (pipeline, missing_part, Error, "a pipeline block that lacks a required part"),
    UnknownTarget => (pipeline, unknown_target, Error, "a teacher predicts something the policy does not produce"),
    UnknownLoss => (pipeline, unknown_loss, Error, "a loss the trainer does not know"),
    UnknownInput => (pipeline, unknown_input, Error, "a model reads a field or context that does not exist"),
    InputKind => (pipeline, input_kind, Error, "a model input of a kind its list does not take"),
}

impl Code {
    /// Looks a code up by its full name (`rubric::check::weights_sum`) or its last part
    /// (`weights_sum`).
    pub fn parse(text: &str) -> Option<Code> {
        let text = text.trim();
        Code::ALL.iter().copied().find(|c| {
            let full = c.as_str();
            full == text
                || full.rsplit("::").next() == Some(text)
                || full.strip_prefix("rubric::") == Some(text)
        })
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
