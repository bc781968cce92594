//! Unit tests of crash normalization and fingerprinting: per language, tables of one crash as
//! seen from different machines, versions and runs (one fingerprint) and of other code paths
//! (other fingerprints); structured inputs against raw text; malformed input.

mod go;
mod java;
mod javascript;
mod kernel;
mod malformed;
mod native;
mod python;
mod rust;
mod structured;

use super::{CrashReport, Fingerprint, fingerprint};

/// The fingerprint of a raw log, which must parse.
pub(super) fn fp(text: &str) -> Fingerprint {
    let report = CrashReport::from_text(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    fingerprint(&report)
}

/// Every variant fingerprints like `base`.
pub(super) fn assert_same(base: &str, variants: &[(&str, &str)]) {
    let expected = fp(base);
    for (name, text) in variants {
        let got = fp(text);
        assert_eq!(
            got.hash, expected.hash,
            "{name}: expected the base's fingerprint\n  base: {} {:?}\n  got:  {} {:?}",
            expected.title, expected.frames, got.title, got.frames
        );
    }
}

/// Every variant fingerprints unlike `base` and unlike each other.
pub(super) fn assert_different(base: &str, variants: &[(&str, &str)]) {
    let mut seen = vec![("base", fp(base))];
    for (name, text) in variants {
        let got = fp(text);
        if let Some((other, _)) = seen.iter().find(|(_, f)| f.hash == got.hash) {
            panic!(
                "{name} fingerprints like {other}: {} {:?}",
                got.title, got.frames
            );
        }
        seen.push((name, got));
    }
}

/// sha256 hex of a canonical string, computed independently of the implementation.
pub(super) fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}
