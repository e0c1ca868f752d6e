//! The web console: static files compiled into the binary and served at `/console` on the
//! API's own port, so it works on a host with no network. The files hold no ledger data and
//! need no key; the console asks for one and sends it with each API call it makes.

use crate::App;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[File] = &[
    File { name: "index.html", content_type: "text/html; charset=utf-8", bytes: include_bytes!("../console/index.html") },
    File { name: "console.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("../console/console.js") },
    File { name: "console.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("../console/console.css") },
    File {
        name: "vendor/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../console/vendor/uPlot.iife.min.js"),
    },
    File {
        name: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../console/vendor/uPlot.min.css"),
    },
];

/// Scripts and styles only from the console itself; no frames, no other origin. Charts set
/// element styles from script, which this allows.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<App> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { serve("index.html") }))
        .route("/console/{*file}", get(|Path(file): Path<String>| async move { serve(&file) }))
}

fn serve(name: &str) -> Response {
    let Some(file) = FILES.iter().find(|file| file.name == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    let mut response = file.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    // A new binary may ship new files under the same names: browsers ask again each time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
