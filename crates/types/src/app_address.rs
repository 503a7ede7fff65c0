//! How a worker's ingress names apps: `Host: <app-id>.<domain>`, or the path `/<app-id>/...` on
//! any host. The worker routes by it; the CLI and SDK build apps' URLs by it. Untrusted input
//! (any request's head): never panics.

use crate::AppId;

/// Which app a request is for, and the path to send it (the `/<app-id>` prefix removed).
pub fn app_of_request(
    host: Option<&str>,
    path_and_query: &str,
    domain: &str,
) -> Option<(AppId, String)> {
    if let Some(host) = host {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        if let Some(label) = host
            .strip_suffix(&domain.to_ascii_lowercase())
            .and_then(|rest| rest.strip_suffix('.'))
            && let Some(id) = app_id(label)
        {
            return Some((id, path_and_query.to_string()));
        }
    }
    let rest = path_and_query.strip_prefix('/')?;
    let (first, remainder) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let id = app_id(first)?;
    let forwarded = if remainder.starts_with('/') {
        remainder.to_string()
    } else {
        format!("/{remainder}")
    };
    Some((id, forwarded))
}

/// An app id written in decimal digits only (`+7` and ` 7` are not ids).
fn app_id(text: &str) -> Option<AppId> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(AppId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_host_or_by_path() {
        let domain = "apps.local";
        assert_eq!(
            app_of_request(Some("7.apps.local:8800"), "/x?y=1", domain),
            Some((AppId(7), "/x?y=1".into()))
        );
        assert_eq!(
            app_of_request(Some("127.0.0.1:8800"), "/7/x?y=1", domain),
            Some((AppId(7), "/x?y=1".into()))
        );
        assert_eq!(
            app_of_request(None, "/7", domain),
            Some((AppId(7), "/".into()))
        );
        assert_eq!(
            app_of_request(None, "/7?q", domain),
            Some((AppId(7), "/?q".into()))
        );
        assert_eq!(app_of_request(Some("evil.apps.local"), "/", domain), None);
        assert_eq!(
            app_of_request(Some("7.Apps.Local"), "/", domain),
            Some((AppId(7), "/".into()))
        );
        assert_eq!(app_of_request(Some("+7.apps.local"), "/+7", domain), None);
        assert_eq!(
            app_of_request(Some("[::1]:8800"), "/99999999999999999999", domain),
            None
        );
        assert_eq!(app_of_request(None, "/favicon.ico", domain), None);
    }
}
