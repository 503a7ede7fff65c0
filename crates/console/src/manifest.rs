//! `POST /api/manifest`: a `wetee.toml` read exactly as the CLI reads it, so that the deploy
//! screen shows the same messages next to the same fields, and signs the same specification.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wetee_types::manifest::{AppSpec, Manifest, ManifestError, TaskSpec};

/// The largest manifest read: far above any real one, and bounded so a page cannot make the
/// server parse megabytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// A manifest that parsed and passed every check the chain makes on it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", content = "spec", rename_all = "snake_case")]
enum Parsed {
    App(AppSpec),
    Task(TaskSpec),
}

/// Every problem found, each naming its field.
#[derive(Debug, Serialize)]
struct Problems {
    problems: Vec<ManifestError>,
}

/// Parses `text` as a `wetee.toml`: `{"kind","spec"}`, or `{"problems"}`. Both are answers
/// to the question asked (a manifest being typed has problems most of the time), so both are
/// `200 OK`.
pub async fn parse(text: String) -> Response {
    match Manifest::from_toml(&text) {
        Ok(Manifest::App(spec)) => Json(Parsed::App(spec)).into_response(),
        Ok(Manifest::Task(spec)) => Json(Parsed::Task(spec)).into_response(),
        Err(errors) => Json(Problems { problems: errors.0 }).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::StatusCode;

    async fn answer(text: &str) -> (StatusCode, serde_json::Value) {
        let response = parse(text.to_string()).await;
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    const HELLO: &str = r#"
kind = "app"
name = "hello"
image = "localhost/hello@sha256:0000000000000000000000000000000000000000000000000000000000000001"
ports = [{ container = 8080 }]
resources = { cpu_millicores = 100, memory_mib = 32 }
placement = { tee = "simulated", max_price_per_epoch = "1" }
"#;

    #[tokio::test]
    async fn a_valid_manifest_becomes_the_spec_the_chain_takes() {
        let (status, body) = answer(HELLO).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["kind"], "app");
        let spec: AppSpec = serde_json::from_value(body["spec"].clone()).unwrap();
        let Manifest::App(expected) = Manifest::from_toml(HELLO).unwrap() else {
            panic!("an app");
        };
        assert_eq!(spec, expected);
    }

    #[tokio::test]
    async fn each_problem_names_its_field_with_the_clis_words() {
        let text = HELLO.replace("cpu_millicores = 100", "cpu_millicores = 0");
        let (status, body) = answer(&text).await;
        assert_eq!(status, StatusCode::OK);
        let expected = Manifest::from_toml(&text).unwrap_err().0;
        let problems: Vec<ManifestError> =
            serde_json::from_value(body["problems"].clone()).unwrap();
        assert_eq!(problems, expected);
        assert_eq!(problems[0].field, "resources.cpu_millicores");

        let (status, body) = answer("kind = ").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["problems"][0]["field"], "wetee.toml");
    }
}
