//! The standard library: modules written in the policy language, embedded in the compiler under
//! pseudo-paths such as `<stdlib/std/text.policy>` so diagnostics can point into them.

/// `(module name, pseudo-path, text)` of every standard module.
pub const MODULES: &[(&str, &str, &str)] = &[
    (
        "std.text",
        "<stdlib/std/text.policy>",
        include_str!("../../stdlib/std/text.policy"),
    ),
    (
        "std.career",
        "<stdlib/std/career.policy>",
        include_str!("../../stdlib/std/career.policy"),
    ),
    (
        "std.num",
        "<stdlib/std/num.policy>",
        include_str!("../../stdlib/std/num.policy"),
    ),
];

/// The pseudo-path and text of a standard module.
pub fn module(name: &str) -> Option<(&'static str, &'static str)> {
    MODULES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, path, text)| (*path, *text))
}

/// The standard module that defines `name` (a function or enum), for "add `use ...`" help.
pub fn exports(name: &str) -> Option<&'static str> {
    MODULES.iter().find_map(|(module, _, text)| {
        let defines = [format!("fn {name}("), format!("enum {name} ")]
            .iter()
            .any(|needle| text.contains(needle.as_str()));
        defines.then_some(*module)
    })
}

/// The functions the standard modules define, with their module, for "did you mean" on a
/// misspelled one (`coverag`). Read from the modules' text: every `fn NAME(`.
pub fn functions() -> impl Iterator<Item = (&'static str, &'static str)> {
    MODULES.iter().flat_map(|(module, _, text)| {
        text.match_indices("fn ").filter_map(move |(at, _)| {
            let rest = text.get(at + 3..)?;
            let end = rest.find('(')?;
            let name = rest.get(..end)?.trim();
            let word = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && text
                    .get(..at)
                    .is_none_or(|before| before.ends_with([' ', '\n', '\t']) || before.is_empty());
            word.then_some((*module, name))
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    #[test]
    fn the_standard_functions_are_listed_with_their_module() {
        let all: Vec<(&str, &str)> = super::functions().collect();
        assert!(all.contains(&("std.text", "coverage")), "{all:?}");
        for (module, name) in &all {
            assert_eq!(super::exports(name), Some(*module), "{name}");
        }
    }
}
