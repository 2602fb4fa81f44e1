//! rubric-lsp: the language server of the policy language (`rubric lsp`), on rust-analyzer's
//! synchronous `lsp-server`: diagnostics as you type, hover, go to definition (into the standard
//! library too), completion, document symbols and formatting.

pub mod features;
pub mod lines;
mod server;
pub mod transport;
pub mod workspace;

pub use server::{Config, ServerError, capabilities, run, run_stdio};
