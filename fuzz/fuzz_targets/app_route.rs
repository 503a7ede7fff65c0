//! Any request head: finding the app it is for never panics, and what reaches an app by its
//! path starts with `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::app_address::app_of_request;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (host, path) = (parts.next(), parts.next().unwrap_or("/"));
    let domain = parts.next().unwrap_or("localhost");
    if let Some((_, forwarded)) = app_of_request(host, path, domain)
        && !host.is_some_and(|h| h.to_ascii_lowercase().contains(&domain.to_ascii_lowercase()))
    {
        assert!(forwarded.starts_with('/'), "{forwarded:?}");
    }
});
