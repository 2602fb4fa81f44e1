//! rubric-compiler: the policy language's front end and lowering. Pure: it reads no files and
//! touches no network; callers hand it names and texts (and, for imports, a [`ModuleProvider`]).

pub mod diagnostics;
pub mod source;
pub mod syntax;
