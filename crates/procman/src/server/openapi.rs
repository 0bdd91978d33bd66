//! The OpenAPI 3.1 document of the REST API, generated from the handlers'
//! annotations, served at `/api/v1/openapi.json` and checked into
//! `docs/openapi.json` (a test fails when the two differ).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::{rest, Api};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hsu-procman control API",
        description = "Lists, starts, stops, restarts and signals the processes of a running \
            `procman run`, and shows or ends the manager. Over TCP every route but `/healthz` \
            needs `Authorization: Bearer <token>`; on the Unix socket `<state_dir>/procman.sock` \
            no token is needed. Errors are `ApiError` bodies. See docs/api.md.",
        license(name = "MIT OR Apache-2.0"),
    ),
    security(("bearer" = [])),
    modifiers(&Bearer),
    tags(
        (name = "processes", description = "The supervised processes"),
        (name = "manager", description = "The manager itself"),
    ),
)]
struct ApiDoc;

/// Declares the `bearer` security scheme that every route names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The routes with their description.
pub fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(rest::routes())
}

/// The document alone (for the checked-in copy).
#[cfg(test)]
pub fn document() -> Document {
    router().into_openapi()
}

/// The document as served and checked in: pretty JSON and a final newline.
pub fn to_json(doc: &Document) -> String {
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the document: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is the document the server serves. Regenerate
    /// it with `PROCMAN_WRITE_OPENAPI=1 cargo test -p procman --bin procman openapi`.
    #[test]
    fn the_checked_in_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let now = to_json(&document());
        if std::env::var_os("PROCMAN_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &now).expect("write docs/openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == now,
            "docs/openapi.json differs from the document the server generates; regenerate it with \
             `PROCMAN_WRITE_OPENAPI=1 cargo test -p procman --bin procman openapi` and commit it"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let doc = document();
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&doc)).expect("the document is JSON");
        assert!(json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        for path in [
            "/healthz",
            "/api/v1/processes",
            "/api/v1/processes/{id}",
            "/api/v1/processes/{id}/start",
            "/api/v1/processes/{id}/stop",
            "/api/v1/processes/{id}/restart",
            "/api/v1/processes/{id}/signal",
            "/api/v1/manager",
            "/api/v1/manager/reload",
            "/api/v1/manager/shutdown",
        ] {
            assert!(json["paths"][path].is_object(), "{path} missing");
        }
    }
}
