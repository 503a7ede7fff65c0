//! The app's built files (`web/dist`), embedded at compile time, served with their content
//! type; any path that is not a file gets the app's page, which routes in the browser.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// `web/dist`, as built by `npm run build` in `web/` and committed.
#[derive(RustEmbed)]
#[folder = "../../web/dist"]
pub(crate) struct Assets;

/// The page every app route starts from.
const INDEX: &str = "index.html";

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The file at `uri`'s path, or the app's page.
pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (path, file) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (path, file),
        // A missing file under /assets/ is a stale page asking for an old build's file.
        None if path.starts_with("assets/") => {
            return (StatusCode::NOT_FOUND, "no such file in this build\n").into_response();
        }
        None => match Assets::get(INDEX) {
            Some(file) => (INDEX, file),
            None => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "this build of wetee has no web console (web/dist was empty)\n",
                )
                    .into_response();
            }
        },
    };
    // Built files carry their hash in their name: they never change. The page does.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // Never inside another site's frame: its page could trick a click on "send".
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_embedded_and_its_files_have_their_types() {
        let index = Assets::get(INDEX).expect("web/dist/index.html is embedded");
        let page = String::from_utf8_lossy(&index.data);
        assert!(page.contains("<div id=\"app\">"), "{page}");
        let script = Assets::iter()
            .find(|name| name.starts_with("assets/") && name.ends_with(".js"))
            .expect("the app's script");
        assert_eq!(content_type(&script), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
