//! Every command prints either words for people or JSON for programs (`--output json`).

use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Words for people.
    Text,
    /// One JSON document on stdout, nothing else.
    Json,
}

/// Prints `value` as JSON, or `text` for people.
pub fn print<T: Serialize>(format: Format, value: &T, text: impl FnOnce() -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        ),
        Format::Text => println!("{}", text()),
    }
}
