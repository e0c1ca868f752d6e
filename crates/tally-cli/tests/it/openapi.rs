//! The API document is part of the product: the committed `docs/openapi.json` must be exactly
//! what the server serves. After changing a route, regenerate it with
//! `cargo run -p tally-cli -- openapi > docs/openapi.json`.

use crate::harness::TestServer;

#[tokio::test]
async fn the_committed_document_matches_the_served_one() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/openapi.json")).expect("docs/openapi.json is JSON");
    let generated = serde_json::to_value(tally_server::openapi()).unwrap();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: regenerate it with `cargo run -p tally-cli -- openapi > docs/openapi.json`"
    );
    let server = TestServer::start().await;
    let (status, served) = server.get("/openapi.json").await;
    assert_eq!((status, served), (200, generated));
}

#[test]
fn every_route_is_documented() {
    let document = serde_json::to_value(tally_server::openapi()).unwrap();
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    for route in [
        "/v1/assets",
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/transfers",
        "/v1/accounts/{id}/history",
        "/v1/holds",
        "/v1/whoami",
        "/v1/stats",
        "/v1/journal/position",
        "/v1/transfers",
        "/v1/transfers/{id}",
        "/v1/journal",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.iter().any(|p| *p == route), "{route} is missing from the OpenAPI document");
    }
}
