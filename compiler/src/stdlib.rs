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
