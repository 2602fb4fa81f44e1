use rubric_compiler::source::FileId;
use rubric_compiler::syntax::{Limits, parse};
#[test]
fn scratch() {
    let path = std::env::var("P").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = parse(FileId(0), &text, &Limits::default());
    let mut sources = rubric_compiler::source::Sources::new();
    sources.add("x.policy", text.as_str());
    println!(
        "{}",
        rubric_compiler::diagnostics::render_all(
            parsed.diagnostics.iter(),
            &sources,
            Default::default(),
            80,
            false
        )
    );
    println!("tree: {}", parsed.tree.is_some());
    if std::env::var("DUMP").is_ok() {
        println!("{:#?}", parsed.tree);
    }
}
