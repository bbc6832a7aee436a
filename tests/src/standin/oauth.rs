//! `POST /services/oauth2/token`, client credentials flow only (what the project uses).

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{rejection::FormRejection, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Form, Json,
};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::server::App;

const ORG_ID: &str = "00D000000000001AAA";
const USER_ID: &str = "005000000000001AAA";

pub(crate) async fn token(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    app.lock().stats.token_requests += 1;
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let credentials = basic_credentials(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let client_secret = app.lock().client_secret.clone();
    if credentials != Some((app.client_id.clone(), client_secret.clone())) {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    let access_token = new_token();
    app.lock().tokens.insert(access_token.clone());
    // The instance URL is the host the client reached us on, so a client inside a
    // container gets an address that works from there too.
    let instance_url = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| app.base_url.clone(), |host| format!("http://{host}"));
    let id = format!("{instance_url}/id/{ORG_ID}/{USER_ID}");
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    // Salesforce signs `id + issued_at` with the consumer secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{id}{issued_at}").as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    Json(json!({
        "access_token": access_token,
        "signature": signature,
        "scope": "api",
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }))
    .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Shaped like a real session id (`<org id>!<opaque>`), unique per call.
fn new_token() -> String {
    format!("{}!AQ{}", &ORG_ID[..15], crate::random::hex(32))
}
