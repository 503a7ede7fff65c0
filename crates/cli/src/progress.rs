//! What a long command is doing, as it happens, on stderr: on a terminal, a line redrawn in
//! place under the stages already reached; elsewhere, plain lines (a waiting line only when its
//! meaning changes); with `--output json`, one JSON object per line. Stdout keeps the result.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Format;

/// Progress of one command.
#[derive(Debug)]
pub struct Progress {
    format: Format,
    /// The live line, on a terminal only.
    bar: Option<ProgressBar>,
    /// The last waiting summary printed, so that plain output repeats nothing.
    last_waiting: Mutex<Option<String>>,
}

impl Progress {
    /// Progress for a command printing in `format`.
    pub fn new(format: Format) -> Progress {
        let bar = (format == Format::Text && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            format,
            bar,
            last_waiting: Mutex::new(None),
        }
    }

    /// A stage reached: a line that stays.
    pub fn stage(&self, text: &str, json: serde_json::Value) {
        match self.format {
            Format::Json => self.line(&json.to_string()),
            Format::Text => self.line(text),
        }
    }

    /// What the command waits for: `live` is redrawn in place on a terminal (it may count
    /// seconds); elsewhere `summary` is printed whenever it changes.
    pub fn waiting(&self, live: &str, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(live.to_string());
            return;
        }
        let mut last = self.last_waiting.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(summary) {
            return;
        }
        *last = Some(summary.to_string());
        drop(last);
        match self.format {
            Format::Json => self.line(&serde_json::json!({ "waiting": summary }).to_string()),
            Format::Text => self.line(summary),
        }
    }

    /// Runs `f` with the live line cleared, for anything else written to the terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Clears the live line for good.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Where log lines go so that they never tear the live line.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter(self.bar.clone())
    }

    fn line(&self, text: &str) {
        self.suspend(|| {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{text}");
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A `tracing` writer that clears the live line while a log line is written.
#[derive(Debug, Clone)]
pub struct LogWriter(Option<ProgressBar>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            bar: self.0.clone(),
            text: Vec::new(),
        }
    }
}

/// One log line, written to stderr when dropped.
#[derive(Debug)]
pub struct LogLine {
    bar: Option<ProgressBar>,
    text: Vec<u8>,
}

impl std::io::Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.text);
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
