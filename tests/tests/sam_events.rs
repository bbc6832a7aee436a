//! The `sam local invoke` events in events/: each is an API Gateway HTTP API 2.0 request
//! for its route, carrying a sample whose signature verifies with the documented local key.

use std::path::PathBuf;

use lago_sync::lago::Envelope;
use lago_sync::signature;
use lago_sync::Family;

/// The key scripts/local.sh puts in the local secret (README, "Local testing").
const LOCAL_HMAC_KEY: &str = "local-hmac-key-5f1c2d3e-4b5a-6978";

#[test]
fn every_event_is_a_signed_http_api_request_for_its_family() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    for family in Family::ALL {
        let path = dir.join(format!("{}.json", family.as_str()));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            request.uri().path(),
            format!("/webhooks/{}", family.as_str())
        );
        assert_eq!(request.method(), "POST");
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let body = request.body().as_ref();
        let claimed = signature::precheck(
            header("x-lago-signature"),
            header("x-lago-signature-algorithm"),
        )
        .unwrap();
        signature::verify(LOCAL_HMAC_KEY.as_bytes(), body, claimed)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert!(header("x-lago-unique-key").is_some_and(|k| !k.is_empty()));
        let envelope = Envelope::parse(body).unwrap();
        assert!(family.writes(&envelope.webhook_type), "{}", path.display());
    }
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("env.json")).unwrap()).unwrap();
    for function in [
        "CustomerFunction",
        "SubscriptionFunction",
        "InvoiceFunction",
        "CreditNoteFunction",
    ] {
        assert!(
            env[function]["SECRET_ID"].is_string(),
            "env.json lacks {function}"
        );
    }
}

/// The outbound message event: what Salesforce sends for an Account flagged "Bill with
/// Lago", on the route with the local token, from the local org (scripts/local.sh).
#[test]
fn the_outbound_message_event_is_a_request_for_its_route() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let text = std::fs::read_to_string(dir.join("salesforce-account.json")).unwrap();
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["routeKey"], "POST /salesforce/accounts/{token}");
    let token = event["pathParameters"]["token"].as_str().unwrap();
    assert_eq!(token, "local-outbound-token-7d2e9a41c85b6f30");
    assert_eq!(
        event["rawPath"].as_str().unwrap(),
        format!("/salesforce/accounts/{token}")
    );
    let body = event["body"].as_str().unwrap();
    let sample =
        std::fs::read_to_string(dir.join("../samples/salesforce-account.outbound.xml")).unwrap();
    assert_eq!(body, sample, "the event carries the sample");
    let message = lago_sync::outbound::soap::parse(body.as_bytes()).unwrap();
    assert!(lago_sync::outbound::same_org(
        &message.organization_id,
        "00D000000000001AAA"
    ));
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("env.json")).unwrap()).unwrap();
    assert_eq!(
        env["SalesforceAccountFunction"]["SALESFORCE_ORG_ID"],
        "00D000000000001AAA"
    );
    assert!(lambda_http::request::from_str(&text).is_ok());
}
