//! API Gateway HTTP API (payload format 2.0) events for the `POST /webhooks/<family>` routes
//! and the outbound messages' `POST /salesforce/accounts/{token}`,
//! shaped as API Gateway sends them, and a reader for what `lambda_http` answers.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::{json_or_text, random};

const ACCOUNT_ID: &str = "123456789012";
const API_ID: &str = "w3bh00kapi";
const REGION: &str = "us-east-1";
/// Documentation address range (RFC 5737): looks like a client, routes nowhere.
const SOURCE_IP: &str = "203.0.113.10";

/// A webhook request as it reaches the function through API Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpEvent {
    /// Request path, e.g. `/webhooks/customer`.
    pub path: String,
    /// The route's path, the same as `path` but for a route with parameters.
    pub route: String,
    pub path_parameters: Vec<(String, String)>,
    /// Headers in the order sent; names are lowercased and repeats joined in [`Self::to_json`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body base64-encoded with `isBase64Encoded: true`, as API Gateway does for
    /// payloads it treats as binary.
    pub base64: bool,
}

impl HttpEvent {
    /// `POST /webhooks/<family>` with no headers and an empty body.
    pub fn webhook(family: &str) -> HttpEvent {
        let path = format!("/webhooks/{family}");
        HttpEvent {
            route: path.clone(),
            path,
            path_parameters: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            base64: false,
        }
    }

    /// `POST /salesforce/accounts/{token}`, as Salesforce sends an outbound message
    /// (Apache HttpClient, SOAP, an empty SOAPAction).
    pub fn outbound(token: &str, body: &str) -> HttpEvent {
        HttpEvent {
            path: format!("/salesforce/accounts/{token}"),
            route: "/salesforce/accounts/{token}".to_owned(),
            path_parameters: vec![("token".to_owned(), token.to_owned())],
            headers: vec![
                (
                    "content-type".to_owned(),
                    "text/xml; charset=utf-8".to_owned(),
                ),
                ("soapaction".to_owned(), "\"\"".to_owned()),
                (
                    "user-agent".to_owned(),
                    "Jakarta Commons-HttpClient/3.1".to_owned(),
                ),
            ],
            body: body.as_bytes().to_vec(),
            base64: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> HttpEvent {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn headers(mut self, headers: impl IntoIterator<Item = (String, String)>) -> HttpEvent {
        self.headers.extend(headers);
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpEvent {
        self.body = body.into();
        self
    }

    pub fn base64(mut self, base64: bool) -> HttpEvent {
        self.base64 = base64;
        self
    }

    /// The event JSON. Headers API Gateway adds itself (host, content-length, x-forwarded-*,
    /// x-amzn-trace-id) are filled in unless the test set them.
    pub fn to_json(&self) -> Value {
        let route_key = format!("POST {}", self.route);
        let domain = format!("{API_ID}.execute-api.{REGION}.amazonaws.com");
        let now = OffsetDateTime::now_utc();
        let headers = self.joined_headers(&domain, now);
        let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
        let body = if self.base64 {
            BASE64.encode(&self.body)
        } else {
            String::from_utf8_lossy(&self.body).into_owned()
        };
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": API_ID,
                "domainName": domain,
                "domainPrefix": API_ID,
                "http": {
                    "method": "POST",
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": SOURCE_IP,
                    "userAgent": user_agent,
                },
                "requestId": BASE64.encode(random::bytes(11)),
                "routeKey": route_key,
                "stage": "$default",
                "time": now
                    .format(format_description!(
                        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
                    ))
                    .expect("formattable time"),
                "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            },
            "body": body,
            "isBase64Encoded": self.base64,
        });
        if !self.path_parameters.is_empty() {
            let parameters: Map<String, Value> = self
                .path_parameters
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            event["pathParameters"] = Value::Object(parameters);
        }
        event
    }

    /// Lowercased names, repeats joined with "," (format 2.0 has no multi-value headers).
    fn joined_headers(&self, domain: &str, now: OffsetDateTime) -> Map<String, Value> {
        let epoch = now.unix_timestamp();
        let added = [
            ("content-length", self.body.len().to_string()),
            ("host", domain.to_owned()),
            // Lago sends webhooks with Ruby's Net::HTTP, which names itself so.
            ("user-agent", "Ruby".to_owned()),
            (
                "x-amzn-trace-id",
                format!("Root=1-{epoch:08x}-{}", random::hex(24)),
            ),
            ("x-forwarded-for", SOURCE_IP.to_owned()),
            ("x-forwarded-port", "443".to_owned()),
            ("x-forwarded-proto", "https".to_owned()),
        ];
        let mut joined = Map::new();
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            match joined.get_mut(&name) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(value);
                }
                _ => {
                    joined.insert(name, Value::String(value.clone()));
                }
            }
        }
        for (name, value) in added {
            joined.entry(name).or_insert(Value::String(value));
        }
        joined
    }
}

/// Reads a function's answer as API Gateway would: `(status, headers, body)`. Header names are
/// lowercased, `cookies` become `set-cookie` headers, a base64 body is decoded, and the body is
/// parsed as JSON when it is JSON (else a JSON string; `Null` when empty). An answer without
/// `statusCode` is, as in API Gateway, a 200 whose body is the answer itself.
pub fn response(answer: &Value) -> (u16, Vec<(String, String)>, Value) {
    let Some(status) = answer.get("statusCode") else {
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        return (200, headers, answer.clone());
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("statusCode is not an HTTP status: {answer}"));

    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in answer
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        headers.push((name.to_ascii_lowercase(), text(value)));
    }
    let multi = answer.get("multiValueHeaders").and_then(Value::as_object);
    for (name, values) in multi.into_iter().flatten() {
        let name = name.to_ascii_lowercase();
        // A header present in both maps (payload 1.0 style answers) counts once.
        if headers.iter().any(|(existing, _)| *existing == name) {
            continue;
        }
        for value in values.as_array().into_iter().flatten() {
            headers.push((name.clone(), text(value)));
        }
    }
    for cookie in answer
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        headers.push(("set-cookie".to_owned(), text(cookie)));
    }

    let raw = answer
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        BASE64
            .decode(raw)
            .unwrap_or_else(|e| panic!("isBase64Encoded body is not base64: {e}"))
    } else {
        raw.as_bytes().to_vec()
    };
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        json_or_text(&bytes)
    };
    (status, headers, body)
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
