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

/// A document as an indented outline for people (`key: value`, lists with `-`), never JSON.
pub fn outline(value: &serde_json::Value) -> String {
    let mut text = String::new();
    write_outline(&mut text, value, 0);
    let text = text.trim_end().to_string();
    if text.is_empty() {
        "(nothing)".into()
    } else {
        text
    }
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => Some("none".into()),
        serde_json::Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) if items.is_empty() => Some("(none)".into()),
        serde_json::Value::Object(fields) if fields.is_empty() => Some("(none)".into()),
        _ => None,
    }
}

fn write_outline(text: &mut String, value: &serde_json::Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                let key = key.replace('_', " ");
                match scalar(field) {
                    Some(words) => text.push_str(&format!("{indent}{key}: {words}\n")),
                    None => {
                        text.push_str(&format!("{indent}{key}:\n"));
                        write_outline(text, field, depth + 1);
                    }
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(words) => text.push_str(&format!("{indent}- {words}\n")),
                    None => {
                        text.push_str(&format!("{indent}-\n"));
                        write_outline(text, item, depth + 1);
                    }
                }
            }
        }
        other => {
            if let Some(words) = scalar(other) {
                text.push_str(&format!("{indent}{words}\n"));
            }
        }
    }
}

/// One event on one line for people: its name, then its fields as `key=value`
/// (`transferred from=vx.. to=vx.. amount=2.5`).
pub fn event_words(event: &impl Serialize) -> String {
    let value = serde_json::to_value(event).unwrap_or_default();
    let mut words = Vec::new();
    if let Some(name) = value.get("event").and_then(|name| name.as_str()) {
        words.push(name.replace('_', " "));
    }
    flatten(&mut words, "", &value);
    words.join(" ")
}

fn flatten(words: &mut Vec<String>, prefix: &str, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                if prefix.is_empty() && key == "event" {
                    continue;
                }
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(words, &key, field);
            }
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| scalar(item).unwrap_or_else(|| event_words(item)))
                .collect();
            words.push(format!("{prefix}=[{}]", items.join(", ")));
        }
        // Balances are the only strings of digits in events (ids and heights are numbers).
        serde_json::Value::String(text)
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            let amount = text.parse().map(wetee_types::Balance);
            words.push(match amount {
                Ok(amount) => format!("{prefix}={amount}"),
                Err(_) => format!("{prefix}={text}"),
            });
        }
        other => words.push(format!("{prefix}={}", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_outlines_and_event_lines_not_json() {
        let document = serde_json::json!({
            "app_id": 1,
            "status": { "state": "pending" },
            "versions": [{ "version": 1, "image": "x" }],
            "url": null,
        });
        assert_eq!(
            outline(&document),
            "app id: 1\nstatus:\n  state: pending\nversions:\n  -\n    version: 1\n    image: x\nurl: none"
        );
        let event = serde_json::json!({
            "event": "app_placed", "app": 1, "worker": 2, "price": { "per_epoch": "2500000000000" },
        });
        assert_eq!(
            event_words(&event),
            "app placed app=1 worker=2 price.per_epoch=2.5 WTE"
        );
    }
}
