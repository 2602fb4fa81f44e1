//! Standard output for the subcommands that print reports: a closed pipe (`rubric test P |
//! head -1`) ends the command quietly, as Unix tools do, where `print!` would panic on `EPIPE`.

use super::EXIT_USAGE;
use std::fmt::Display;
use std::io::{ErrorKind, Write};

/// Writes `text` to standard output and flushes it. When the reader has gone (a closed pipe) the
/// process ends at once with status 0 and prints nothing: the reader asked for no more, which is
/// not a failure (`head` and `grep -q` close early on purpose). Another write error (a full disk)
/// ends it with status 2 and says so.
pub fn print(text: impl Display) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        closed_or_failed(&e);
    }
}

/// [`print`] and a newline.
pub fn println(text: impl Display) {
    print(format_args!("{text}\n"));
}

/// Ends the process for an error writing standard output: quietly with 0 for a closed pipe,
/// else with a message and status 2.
pub fn closed_or_failed(e: &std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(EXIT_USAGE));
}

/// Whether an error is a closed standard output (for commands that write through their own
/// writer, like `rubric label --out -`).
pub fn is_closed_pipe(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::BrokenPipe
}
