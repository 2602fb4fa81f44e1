//! The progress bar of the commands that read a large file of pairs (`label`, `stats`, `diff`):
//! on standard error, by bytes read, and drawn only when standard error is a terminal
//! (indicatif's stderr target hides itself otherwise), so pipes and logs stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufRead, Read};

/// A bar over `size` bytes, or a spinner when the size is unknown (standard input).
pub fn bar(size: Option<u64>, doing: &str) -> ProgressBar {
    let bar = match size {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {doing} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// A reader that advances a bar by the bytes consumed from it.
pub struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R> Counted<R> {
    pub fn new(inner: R, bar: ProgressBar) -> Self {
        Counted { inner, bar }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.bar.inc(amt as u64);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_advances_by_every_byte_read_line_by_line() {
        let text = "{\"id\": 1}\n{\"id\": 2}\n\n{\"id\": 3}";
        let bar = ProgressBar::hidden();
        let mut input = Counted::new(
            std::io::BufReader::with_capacity(4, text.as_bytes()),
            bar.clone(),
        );
        let lines = (&mut input).lines().count();
        assert_eq!(lines, 4);
        assert_eq!(bar.position(), text.len() as u64);
    }
}
