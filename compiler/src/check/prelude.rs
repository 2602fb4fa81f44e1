//! The native prelude: the few functions written in Rust and always in scope. Everything else
//! lives in `stdlib/`, written in the language.

/// Names of the native functions.
pub const PRELUDE: &[&str] = &[
    "len", "abs", "min", "max", "clamp", "lower", "contains", "missing", "rank",
];

/// The documented signature and meaning of a native function, for hover and `rubric doc`.
pub fn signature(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "len" => (
            "len(x: set<T> | list<T> | string) -> number",
            "How many elements a set or list holds, or how many characters a string has.",
        ),
        "abs" => ("abs(x: number) -> number", "The absolute value of `x`."),
        "min" => (
            "min(a: number, b: number, ...) -> number",
            "The smallest of two or more numbers.",
        ),
        "max" => (
            "max(a: number, b: number, ...) -> number",
            "The largest of two or more numbers.",
        ),
        "clamp" => (
            "clamp(x: number, lo: number, hi: number) -> number",
            "`x` limited to the range from `lo` to `hi`.",
        ),
        "lower" => (
            "lower(s: string) -> string",
            "`s` in lower case (Unicode), for case-insensitive comparison.",
        ),
        "contains" => (
            "contains(collection: set<T> | list<T> | string, x: T | string) -> bool",
            "Whether the set or list holds `x`, or the string contains `x` as a substring.",
        ),
        "missing" => (
            "missing(x: T?) -> bool",
            "Whether an optional field has no value. Inside `not missing(x)`, `x` has a value.",
        ),
        "rank" => (
            "rank(x: E) -> number",
            "The position of a value in its ordered enum, counting from 0 (`intern` is 0).",
        ),
        _ => return None,
    })
}

/// The parameter names of a native function, read from its signature, and whether it takes more
/// after them (`min(a, b, ...)`), so an arity diagnostic can name what a call leaves out.
pub fn parameters(name: &str) -> Option<(Vec<&'static str>, bool)> {
    let (sig, _) = signature(name)?;
    let inside = sig.split_once('(')?.1.rsplit_once(')')?.0;
    let mut names = Vec::new();
    let mut variadic = false;
    for param in inside.split(", ") {
        match param.split_once(':') {
            Some((name, _)) => names.push(name.trim()),
            None if param.trim() == "..." => variadic = true,
            None => return None,
        }
    }
    Some((names, variadic))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_native_names_its_parameters() {
        for name in PRELUDE {
            assert!(
                parameters(name).is_some(),
                "`{name}` has no readable signature"
            );
        }
        assert_eq!(parameters("clamp"), Some((vec!["x", "lo", "hi"], false)));
        assert_eq!(parameters("min"), Some((vec!["a", "b"], true)));
        assert_eq!(
            parameters("contains"),
            Some((vec!["collection", "x"], false))
        );
        assert_eq!(parameters("nope"), None);
    }
}
