//! Checks of what a model reads: `reads [...]` names text fields of the pair's roles (the text
//! encoded as a (query, candidate) pair), `features [...]` names structured fields and the click
//! context (joined to the text before the heads). Each name must exist and be of a kind its
//! list can encode.

use super::*;

/// The names of the click context a model that learns from clicks may take as features: they
/// come from each impression's timestamp.
pub const CONTEXT_FEATURES: &[&str] = &["hour_of_day", "day_of_week"];

/// What a field of a role can be as a model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// `text`: only `reads`.
    Text,
    /// `string`: a category in `features`, or words in `reads`.
    String,
    Number,
    Bool,
    /// An enum: one of its values.
    Enum,
    /// A set or list of strings or enum values: any of them.
    Collection,
    /// Nothing a model can take (a set of numbers, an entity).
    Unusable,
}

impl InputShape {
    fn describe(self) -> &'static str {
        match self {
            InputShape::Text => "text",
            InputShape::String => "a string",
            InputShape::Number => "a number",
            InputShape::Bool => "a bool",
            InputShape::Enum => "an enum",
            InputShape::Collection => "a set of values",
            InputShape::Unusable => "a value no model input takes",
        }
    }
}

/// A role of the pair with its fields, for the input checks.
pub struct RoleOutline<'a> {
    pub name: &'a str,
    pub fields: Vec<(&'a str, InputShape)>,
}

/// Which list an input is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Reads,
    Features,
}

impl List {
    fn keyword(self) -> &'static str {
        match self {
            List::Reads => "reads",
            List::Features => "features",
        }
    }
}

/// Checks a teacher's or the student's `reads` and `features`; `from_clicks` says whether the
/// model learns from the click log (and so has the context features).
pub(super) fn check_inputs(
    reads: &[Ident],
    features: &[Ident],
    owner: &str,
    from_clicks: bool,
    policy: &PolicyOutline<'_>,
    diags: &mut Diagnostics,
) {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for (list, inputs) in [(List::Reads, reads), (List::Features, features)] {
        for input in inputs {
            if let Some(first) = seen.get(input.name.as_str()) {
                diags.push(duplicate(
                    format!("{owner} takes `{}` twice", input.name),
                    input,
                    first,
                    "name each input once",
                ));
                continue;
            }
            seen.insert(&input.name, input);
            check_input(input, list, owner, from_clicks, policy, diags);
        }
    }
}

/// `reads []` (no text) leaves a model only its features: it must have some.
pub(super) fn check_reads_something(
    reads_span: Option<Span>,
    reads: &[Ident],
    features: &[Ident],
    owner: &str,
    diags: &mut Diagnostics,
) {
    let Some(span) = reads_span else {
        return;
    };
    if reads.is_empty() && features.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::MissingPart,
                format!("{owner} reads no text and has no features: it has no input"),
            )
            .at(span, "no text")
            .help(
                "`reads []` is for a model that learns from its features alone; add \
                 `features [...]`, or name the text it reads, e.g. `reads [query.title]`",
            ),
        );
    }
}

fn check_input(
    input: &Ident,
    list: List,
    owner: &str,
    from_clicks: bool,
    policy: &PolicyOutline<'_>,
    diags: &mut Diagnostics,
) {
    let name = input.name.as_str();
    let Some((role_name, field_name)) = name.split_once('.') else {
        if CONTEXT_FEATURES.contains(&name) {
            let problem = match list {
                List::Reads => Some((
                    format!("`{name}` is not text: `reads` takes text fields"),
                    format!("move it to `features [{name}]`"),
                )),
                List::Features if !from_clicks => Some((
                    format!("`{name}` comes from the click log, and {owner} does not learn from clicks"),
                    "the click context is known only to a model that predicts `click`; remove it here"
                        .to_string(),
                )),
                List::Features => None,
            };
            if let Some((message, help)) = problem {
                diags.push(
                    Diagnostic::new(Code::InputKind, message)
                        .at(input.span, "not an input of this model")
                        .help(help),
                );
            }
            return;
        }
        let fields = all_fields(policy);
        let candidates = fields
            .iter()
            .map(String::as_str)
            .chain(CONTEXT_FEATURES.iter().copied());
        let help = match did_you_mean(name, candidates) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "name a field with its role, such as `{}`{}",
                fields.first().map_or("query.title", String::as_str),
                match list {
                    List::Features => ", or the click context: `hour_of_day`, `day_of_week`",
                    List::Reads => "",
                }
            ),
        };
        diags.push(
            Diagnostic::new(Code::UnknownInput, format!("`{name}` is not a model input"))
                .at(input.span, "no such field or context")
                .help(help),
        );
        return;
    };
    let Some(role) = policy.roles.iter().find(|r| r.name == role_name) else {
        let roles: Vec<&str> = policy.roles.iter().map(|r| r.name).collect();
        let help = match did_you_mean(role_name, roles.iter().copied()) {
            Some(best) => format!("did you mean `{best}.{field_name}`?"),
            None => format!("the pair's roles are {}", backticked(&roles)),
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownInput,
                format!("`{}` has no role `{role_name}`", policy.name),
            )
            .at(input.span, "unknown role")
            .help(help),
        );
        return;
    };
    let Some(&(_, shape)) = role.fields.iter().find(|(f, _)| *f == field_name) else {
        let help = match did_you_mean(field_name, role.fields.iter().map(|(f, _)| *f)) {
            Some(best) => format!("did you mean `{role_name}.{best}`?"),
            None => format!(
                "the fields of `{role_name}` are {}",
                backticked(&role.fields.iter().map(|(f, _)| *f).collect::<Vec<_>>())
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownInput,
                format!("`{role_name}` has no field `{field_name}`"),
            )
            .at(input.span, "unknown field")
            .help(help),
        );
        return;
    };
    let fits = match list {
        List::Reads => matches!(shape, InputShape::Text | InputShape::String),
        List::Features => !matches!(shape, InputShape::Text | InputShape::Unusable),
    };
    if fits {
        return;
    }
    let help = match (list, shape) {
        (List::Features, InputShape::Text) => {
            format!("free text is read as text: move it to `reads [{name}]`")
        }
        (List::Reads, InputShape::Unusable) | (List::Features, InputShape::Unusable) => {
            "a model takes text, numbers, bools, strings, enums and sets of strings or enum \
             values; remove it"
                .to_string()
        }
        (List::Reads, _) => {
            format!("a structured field is a feature: move it to `features [{name}]`")
        }
        (List::Features, _) => "remove it".to_string(),
    };
    diags.push(
        Diagnostic::new(
            Code::InputKind,
            format!(
                "`{name}` is {}, which `{}` does not take",
                shape.describe(),
                list.keyword()
            ),
        )
        .at(input.span, format!("{} here", shape.describe()))
        .help(help),
    );
}

/// Every field of every role, as `role.field`.
fn all_fields(policy: &PolicyOutline<'_>) -> Vec<String> {
    policy
        .roles
        .iter()
        .flat_map(|r| r.fields.iter().map(move |(f, _)| format!("{}.{f}", r.name)))
        .collect()
}
