//! Checking names in expressions: paths through roles, `let`s, parameters and entities' fields,
//! enum values (marked used), and the did-you-mean of a name not found.

use super::*;

impl Checker<'_> {
    pub(super) fn path(&mut self, names: &[Ident], span: Span, env: &Env) -> Value {
        let Some(first) = names.first() else {
            return Value::error();
        };
        let key = names
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let rest = names.get(1..).unwrap_or(&[]);
        // A local (`let` or parameter).
        if let Some(local) = env.local(&first.name) {
            if let Some(slot) = local.use_slot
                && self.quiet == 0
                && let Some(u) = self.let_uses.get_mut(slot)
            {
                *u = true;
            }
            let mut v = local.value.clone();
            v.origin = v.origin.take().or(v.key.take());
            v.key = Some(first.name.clone());
            return self.fields(v, rest, &key, env);
        }
        if first.name == "score"
            && let Some(range) = env.score
        {
            return Value {
                key: Some("score".to_string()),
                ..Value::number(range)
            };
        }
        if first.name == "overall" && env.overall {
            return Value {
                key: Some("overall".to_string()),
                abstains: true,
                ..Value::number(Interval::UNIT)
            };
        }
        if let Some((_, entity)) = env.roles.iter().find(|(r, _)| *r == first.name) {
            let v = Value {
                key: Some(first.name.clone()),
                ..Value::of(Type::Entity(*entity))
            };
            return self.fields(v, rest, &key, env);
        }
        if let Some((name, range, abstains)) =
            env.dimensions.iter().find(|(d, _, _)| *d == first.name)
        {
            let v = Value {
                key: Some(name.clone()),
                abstains: *abstains,
                ..Value::number(*range)
            };
            if !rest.is_empty() {
                return self.no_fields(&first.name, rest, "a dimension's score");
            }
            return v;
        }
        match self.lookup(env.scope, &first.name) {
            Some(Symbol::Enum(id)) => {
                let Some(def) = self.program.enum_def(id) else {
                    return Value::error();
                };
                let Some(variant) = rest.first() else {
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("`{}` is an enum, not a value", def.name),
                        )
                        .at(span, "an enum")
                        .help(format!(
                            "name one of its values, like `{}.{}`",
                            def.name,
                            def.variants.first().map_or("x", String::as_str)
                        )),
                    );
                    return Value::error();
                };
                if !def.variants.contains(&variant.name) {
                    let mut d = Diagnostic::new(
                        Code::UnknownEnumValue,
                        format!("enum `{}` has no value `{}`", def.name, variant.name),
                    )
                    .at(variant.span, "not one of its values");
                    if let Some(h) = suggestion_help(
                        &variant.name,
                        "values",
                        def.variants.iter().map(String::as_str),
                    ) {
                        d = d.help(h);
                    }
                    self.report(d);
                    return Value::error();
                }
                if rest.len() > 1 {
                    return self.no_fields(
                        &variant.name,
                        rest.get(1..).unwrap_or(&[]),
                        "an enum value",
                    );
                }
                return Value {
                    constant: Some(variant.name.clone()),
                    key: Some(key),
                    ..Value::of(Type::Enum(id))
                };
            }
            Some(Symbol::Unresolved) => return Value::error(),
            Some(Symbol::Entity(_)) | Some(Symbol::Table(_)) | Some(Symbol::Fn(_)) => {
                let what = match self.lookup(env.scope, &first.name) {
                    Some(Symbol::Entity(_)) => "an entity",
                    Some(Symbol::Table(_)) => "a table; look a value up with `name[key]`",
                    _ => "a function; call it with `name(...)`",
                };
                self.report(
                    Diagnostic::new(Code::TypeMismatch, format!("`{}` is {what}", first.name))
                        .at(first.span, "not a value")
                        .help("use a field of the pair, a `let`, or a value"),
                );
                return Value::error();
            }
            None => {}
        }
        // A bare enum value.
        let mut found: Vec<(crate::resolve::EnumId, String)> = Vec::new();
        if let Some(scope) = self.program.scope(env.scope) {
            for binding in scope.names.values() {
                if let Symbol::Enum(id) = binding.symbol
                    && let Some(def) = self.program.enum_def(id)
                    && def.variants.contains(&first.name)
                {
                    found.push((id, def.name.clone()));
                }
            }
        }
        found.dedup();
        match found.as_slice() {
            [(id, enum_name)] => {
                let id = *id;
                let enum_name = enum_name.clone();
                self.mark_enum_used(env.scope, &enum_name);
                if !rest.is_empty() {
                    return self.no_fields(&first.name, rest, "an enum value");
                }
                Value {
                    constant: Some(first.name.clone()),
                    key: Some(format!("{enum_name}.{}", first.name)),
                    ..Value::of(Type::Enum(id))
                }
            }
            [] => {
                self.unknown_name(first, env);
                Value::error()
            }
            many => {
                let enums: Vec<String> = many
                    .iter()
                    .map(|(_, n)| format!("`{n}.{}`", first.name))
                    .collect();
                self.report(
                    Diagnostic::new(
                        Code::AmbiguousName,
                        format!("`{}` is a value of more than one enum", first.name),
                    )
                    .at(first.span, "which one?")
                    .help(format!("write {}", enums.join(" or "))),
                );
                Value::error()
            }
        }
    }

    pub(super) fn mark_enum_used(&mut self, scope: ScopeId, name: &str) {
        let _ = self.lookup(scope, name);
    }

    pub(super) fn no_fields(&mut self, name: &str, rest: &[Ident], what: &str) -> Value {
        if let Some(field) = rest.first() {
            self.report(
                Diagnostic::new(
                    Code::UnknownField,
                    format!("`{name}` is {what} and has no field `{}`", field.name),
                )
                .at(field.span, "no such field")
                .help("only the pair's roles (and entity-typed values) have fields"),
            );
        }
        Value::error()
    }

    /// Follows `.field` accesses from an entity-typed value.
    pub(super) fn fields(&mut self, mut v: Value, rest: &[Ident], key: &str, env: &Env) -> Value {
        let mut path = v.key.clone().unwrap_or_default();
        for field in rest {
            let entity = match &v.ty {
                Type::Entity(id) => *id,
                Type::Error => return Value::error(),
                other => {
                    let ty = self.program.type_name(other);
                    self.report(
                        Diagnostic::new(
                            Code::UnknownField,
                            format!("`{path}` is a `{ty}` and has no field `{}`", field.name),
                        )
                        .at(field.span, "no such field")
                        .help("only entities have fields"),
                    );
                    return Value::error();
                }
            };
            let Some(def) = self.program.entity(entity) else {
                return Value::error();
            };
            let Some(f) = def.field(&field.name) else {
                let mut d = Diagnostic::new(
                    Code::UnknownField,
                    format!("`{}` has no field `{}`", def.name, field.name),
                )
                .at(field.span, format!("not a field of `{}`", def.name));
                let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
                if let Some(h) = suggestion_help(&field.name, "fields", names.iter().copied()) {
                    d = d.help(h);
                }
                self.report(d);
                return Value::error();
            };
            path = format!("{path}.{}", field.name);
            v = Value {
                key: Some(path.clone()),
                ..Value::of(f.ty.clone())
            };
            if f.ty == Type::Optional(Box::new(Type::Number)) {
                v.range = Interval::TOP;
            }
        }
        let _ = (key, env);
        v
    }

    pub(super) fn unknown_name(&mut self, name: &Ident, env: &Env) {
        if env.silent_unknown {
            return;
        }
        let hint = env.elsewhere.iter().find(|e| {
            e.name == name.name
                && env.current.as_deref() != Some(e.owner.as_str())
                && (!e.in_dimensions_only || env.current.is_some())
        });
        if let Some(e) = hint {
            let why = e.why.clone();
            self.report(
                Diagnostic::new(
                    Code::UnknownName,
                    format!("`{}` is not visible here", name.name),
                )
                .at(name.span, "defined elsewhere")
                .help(why),
            );
            return;
        }
        if !env.dimensions.is_empty()
            && let Some(best) = did_you_mean(
                &name.name,
                env.dimensions.iter().map(|(d, _, _)| d.as_str()),
            )
        {
            {
                let best = best.to_string();
                self.report(
                    Diagnostic::new(
                        Code::UnknownDimension,
                        format!("the policy has no dimension `{}`", name.name),
                    )
                    .at(name.span, "no such dimension")
                    .help(format!("did you mean `{best}`?")),
                );
                return;
            }
        }
        let mut candidates: Vec<String> = Vec::new();
        candidates.extend(env.locals.iter().map(|l| l.name.clone()));
        candidates.extend(env.roles.iter().map(|(r, _)| r.clone()));
        candidates.extend(env.dimensions.iter().map(|(d, _, _)| d.clone()));
        if env.score.is_some() {
            candidates.push("score".to_string());
        }
        if env.overall {
            candidates.push("overall".to_string());
        }
        if let Some(scope) = self.program.scope(env.scope) {
            for (n, b) in &scope.names {
                candidates.push(n.clone());
                if let Symbol::Enum(id) = b.symbol
                    && let Some(def) = self.program.enum_def(id)
                {
                    candidates.extend(def.variants.iter().cloned());
                }
            }
        }
        let mut d = Diagnostic::new(Code::UnknownName, format!("unknown name `{}`", name.name))
            .at(name.span, "not defined here");
        if let Some(best) = did_you_mean(&name.name, candidates.iter().map(String::as_str)) {
            d = d.help(format!("did you mean `{best}`?"));
            self.meant(env.scope, best);
        } else if name.name == "score" {
            d = d.help("`score` names a dimension's score inside its `grade` bands; elsewhere use the dimension's name");
        } else if name.name == "overall" {
            d = d.help("`overall` is readable in rules and in `grade overall`");
        } else if !env.roles.is_empty() {
            let roles: Vec<String> = env
                .roles
                .iter()
                .map(|(r, _)| format!("`{r}.field`"))
                .collect();
            d = d.help(format!(
                "fields of the pair are read as {}",
                roles.join(" or ")
            ));
        }
        self.report(d);
    }
}
