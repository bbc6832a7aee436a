//! Lago's side of a webhook: the recorded payloads and the HMAC signature Lago attaches.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Lago's `hmac` signature: `Base64.strict_encode64(OpenSSL::HMAC.digest("sha-256", key,
/// payload.to_json))`. Lago sends exactly `payload.to_json` as the body, so signing the body
/// bytes is the same thing.
pub fn sign(hmac_key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(hmac_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

/// The headers Lago sends with an HMAC-signed webhook.
pub fn signed_headers(hmac_key: &str, unique_key: &str, body: &[u8]) -> Vec<(String, String)> {
    [
        ("X-Lago-Signature", sign(hmac_key, body)),
        ("X-Lago-Signature-Algorithm", "hmac".to_owned()),
        ("X-Lago-Unique-Key", unique_key.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Raw bytes of `tests/fixtures/lago/<name>`, kept byte-exact because signatures cover them.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()))
}

/// File names of all Lago fixtures, sorted.
pub fn fixture_names() -> Vec<String> {
    let dir = fixtures_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|entry| {
            let entry = entry.expect("readable fixtures directory entry");
            entry.file_name().into_string().expect("UTF-8 fixture name")
        })
        .collect();
    names.sort();
    names
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/lago")
}
