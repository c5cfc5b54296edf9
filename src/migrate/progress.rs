//! A progress line on stderr for the migration commands (only when stderr
//! is a terminal: pipes and CI logs get none).

use std::io::Write as _;
use std::time::{Duration, Instant};

/// A one-line progress bar on stderr, drawn only when stderr is a terminal
/// (a log file or a pipe gets nothing).
pub struct Progress {
    enabled: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            drawn: false,
            last: None,
        }
    }

    /// `done` of `total` steps of `what` are done.
    pub fn show(&mut self, what: &str, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        if !self.due() {
            return;
        }
        const WIDTH: usize = 30;
        let filled = done.min(total) * WIDTH / total;
        let line = format!(
            "\r{what} [{}{}] {done}/{total}",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled)
        );
        self.draw(&line);
    }

    /// At most ten redraws a second: a terminal over SSH is slow.
    fn due(&mut self) -> bool {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    fn draw(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        // A progress bar that cannot be drawn is not worth failing for.
        let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
        self.drawn = true;
    }

    /// `done` items of `what` so far, the total unknown (a stream).
    pub fn count(&mut self, what: &str, done: usize) {
        if !self.enabled || !self.due() {
            return;
        }
        self.draw(&format!("\r{what}: {done}"));
    }

    /// Erases the bar.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[2K").and_then(|()| err.flush());
            self.drawn = false;
            self.last = None;
        }
    }
}
