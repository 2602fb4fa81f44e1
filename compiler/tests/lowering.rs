//! Lowering never invents a meaning: a name the check let through that it cannot find (a
//! checker bug) fails the lowering with an internal error naming the name and its place,
//! instead of a silent `abstain` in the labeling program.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::lower::{LowerError, lower};
use rubric_compiler::syntax::ast::{ExprKind, Item, TopItem};
use rubric_compiler::{NoModules, Options, check_source};

const POLICY: &str = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% { score = query.x }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;

#[test]
fn a_name_lowering_cannot_find_is_an_internal_error_not_an_abstain() {
    let mut checked = check_source("t.policy", POLICY, &mut NoModules, &Options::default());
    assert!(!checked.has_errors());
    assert!(lower(&checked, "h".into()).is_ok());

    // What a checker bug would hand over: a field the entity does not have.
    let Some(TopItem::Policy(policy)) = checked.tree.as_mut().unwrap().items.first_mut() else {
        panic!("a policy");
    };
    let Some(Item::Dimension(d)) = policy
        .items
        .iter_mut()
        .find(|i| matches!(i, Item::Dimension(_)))
    else {
        panic!("a dimension");
    };
    let ExprKind::Path(names) = &mut d.score[0].value.kind else {
        panic!("a path");
    };
    names[1].name = "y".to_string();
    match lower(&checked, "h".into()) {
        Err(LowerError::Internal(what)) => {
            assert!(what.contains("no field `query.y`"), "{what}");
            assert!(what.contains("t.policy:4:"), "{what}");
        }
        other => panic!("lowered anyway: {other:?}"),
    }
}
