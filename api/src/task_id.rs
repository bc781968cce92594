//! Task ids: derived from the trigger's idempotency key, so a retried request names the same
//! task (and the same workflow), or fresh and time-ordered when there is no key.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header that makes a trigger idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// `t-` and the first 20 hex digits of the key's sha256: stable across retries and replicas.
pub fn from_idempotency_key(key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("t-{}", &digest[..20])
}

/// `t-` and a uuid v7 (time-ordered), for triggers without a key.
pub fn fresh() -> String {
    format!("t-{}", uuid::Uuid::now_v7().simple())
}

/// The id a trigger names: from its `Idempotency-Key` header when present, else fresh.
pub fn for_request(headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(match idempotency_key(headers)? {
        Some(key) => from_idempotency_key(&key),
        None => fresh(),
    })
}

/// The `Idempotency-Key` header: printable ASCII, not blank, at most [`MAX_KEY_LEN`] bytes.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = |message: &str| ApiError::bad_parameter("Idempotency-Key", message);
    let key = value
        .to_str()
        .map_err(|_| bad("Idempotency-Key must be printable ASCII"))?;
    check_key(key).map_err(bad)?;
    Ok(Some(key.to_string()))
}

/// The rules an idempotency key follows, as a message when it breaks one.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.trim().is_empty() {
        return Err("Idempotency-Key must not be blank");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("Idempotency-Key must be at most 255 bytes");
    }
    if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("Idempotency-Key must be printable ASCII");
    }
    Ok(())
}
