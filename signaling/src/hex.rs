//! Lower-case hex: how random tokens (sessions, sign-in links, token ids, the API key) and
//! digests (stored token hashes, web file tags) are written.

use rand::RngCore;

/// `bytes` random bytes from the thread's CSPRNG, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}
