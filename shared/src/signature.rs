//! Lago's HMAC webhook signature (contract §3): `X-Lago-Signature` is
//! base64(HMAC-SHA256(organization HMAC key, exact body bytes)).

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingSignature,
    /// Lago's other scheme is `jwt`; only `hmac` endpoints are supported.
    UnsupportedAlgorithm,
    Mismatch,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MissingSignature => "the X-Lago-Signature header is missing",
            Rejection::UnsupportedAlgorithm => {
                "X-Lago-Signature-Algorithm must be hmac (register the endpoint with signature_algo hmac)"
            }
            Rejection::Mismatch => "the signature does not match the body",
        }
    }
}

/// Checks the headers' shape before any key is needed, so that requests that can never
/// verify cost no Secrets Manager call.
pub fn precheck<'a>(
    signature: Option<&'a str>,
    algorithm: Option<&str>,
) -> Result<&'a str, Rejection> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Rejection::MissingSignature)?;
    match algorithm.map(str::trim) {
        Some(a) if a.eq_ignore_ascii_case("hmac") => Ok(signature),
        _ => Err(Rejection::UnsupportedAlgorithm),
    }
}

/// Constant-time comparison of the expected MAC with the decoded header value.
pub fn verify(hmac_key: &[u8], body: &[u8], signature: &str) -> Result<(), Rejection> {
    let claimed = STANDARD
        .decode(signature)
        .map_err(|_| Rejection::Mismatch)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(hmac_key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&claimed).map_err(|_| Rejection::Mismatch)
}

/// What Lago puts in `X-Lago-Signature`; used by the tests and the local sender.
pub fn sign(hmac_key: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(hmac_key).expect("HMAC accepts keys of any length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"2c0ec56c-1b1a-4d4b-9a51-4f2c3d0e8f11";
    const BODY: &[u8] = br#"{"webhook_type":"customer.updated","object_type":"customer","customer":{"name":"\u003cAcme\u003e"}}"#;

    #[test]
    fn matches_an_independent_computation() {
        // python3: base64.b64encode(hmac.new(b"key", b'{"a":1}', hashlib.sha256).digest())
        assert_eq!(
            sign(b"key", br#"{"a":1}"#),
            "iKZ/JLvNrtDmyZdAS7eadDuvRMa6svTCcyjjAJ0i40I="
        );
    }

    #[test]
    fn accepts_the_exact_bytes_only() {
        let sig = sign(KEY, BODY);
        assert_eq!(verify(KEY, BODY, &sig), Ok(()));
        // Re-serialising would turn \u003c into <; the signature must then fail.
        let reserialised = br#"{"webhook_type":"customer.updated","object_type":"customer","customer":{"name":"<Acme>"}}"#;
        assert_eq!(verify(KEY, reserialised, &sig), Err(Rejection::Mismatch));
        assert_eq!(verify(b"another-key", BODY, &sig), Err(Rejection::Mismatch));
        assert_eq!(verify(KEY, BODY, "not base64!"), Err(Rejection::Mismatch));
        assert_eq!(verify(KEY, BODY, &sig[..20]), Err(Rejection::Mismatch));
    }

    #[test]
    fn headers_are_checked_before_any_key() {
        assert_eq!(
            precheck(None, Some("hmac")),
            Err(Rejection::MissingSignature)
        );
        assert_eq!(
            precheck(Some("  "), Some("hmac")),
            Err(Rejection::MissingSignature)
        );
        assert_eq!(
            precheck(Some("abc"), Some("jwt")),
            Err(Rejection::UnsupportedAlgorithm)
        );
        assert_eq!(
            precheck(Some("abc"), None),
            Err(Rejection::UnsupportedAlgorithm)
        );
        assert_eq!(precheck(Some("abc"), Some("HMAC")), Ok("abc"));
    }
}
