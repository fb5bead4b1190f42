//! What is stored with each object, and the byte layout of an object file:
//!
//! ```text
//! "FERRYC2\n" | meta length (u32 LE) | meta (JSON) | CRC-32C of meta (u32 LE)
//! | body | CRC-32C of body (u32 LE) | body length (u64 LE)
//! ```
//!
//! The body's checksum and length go in a trailer because a response's length
//! is often unknown until it ends. A file whose size does not add up, whose
//! meta checksum is wrong, or whose body checksum does not match when read
//! whole is treated as absent and removed. CRC-32C (hardware-accelerated)
//! rather than a cryptographic hash: it detects damage at many GB/s, and the
//! files are the cache's own, not untrusted input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::CacheError;

pub const MAGIC: &[u8; 8] = b"FERRYC2\n";
pub const META_HASH_LEN: usize = 4;
pub const TRAILER_LEN: u64 = 4 + 8;
/// Largest meta accepted when reading; protects against a corrupt length.
pub const MAX_META_LEN: usize = 1 << 20;

/// What a stored file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A response with its body.
    Object,
    /// Stands at the primary key of a response that varies: names the request
    /// headers that select the variant, each stored under its own id.
    VaryMarker,
}

/// Everything about a stored response except its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub kind: Kind,
    /// The primary cache key (normalized URL).
    pub key: String,
    /// Request header names the response varies on (lower case, sorted).
    pub vary: Vec<String>,
    /// For a vary marker: a number mixed into its variants' ids, new each time
    /// a marker is created, so variants of an invalidated marker are never
    /// found again.
    #[serde(default)]
    pub generation: u64,
    pub status: u16,
    /// Response headers as stored, hop-by-hop headers removed. Values are kept
    /// byte for byte (each byte as one char, so non-UTF-8 survives JSON).
    pub headers: Vec<(String, String)>,
    /// When the request was sent and the response received (ms since epoch).
    pub request_time_ms: u64,
    pub response_time_ms: u64,
}

impl Meta {
    pub fn vary_marker(key: &str, vary: Vec<String>, generation: u64) -> Meta {
        Meta {
            kind: Kind::VaryMarker,
            key: key.to_string(),
            vary,
            generation,
            status: 0,
            headers: Vec::new(),
            request_time_ms: 0,
            response_time_ms: 0,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK)
    }

    /// The headers as a map whose values all share one buffer: copying the
    /// map for each hit then touches one allocation, not one per header.
    pub fn header_map(&self) -> HeaderMap {
        let mut all = Vec::with_capacity(self.headers.iter().map(|(_, v)| v.len()).sum());
        let mut ends = Vec::with_capacity(self.headers.len());
        for (_, value) in &self.headers {
            all.extend(value.chars().map(|c| c as u32 as u8));
            ends.push(all.len());
        }
        let all = bytes::Bytes::from(all);
        let mut map = HeaderMap::with_capacity(self.headers.len());
        let mut start = 0;
        for ((name, _), end) in self.headers.iter().zip(ends) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_maybe_shared(all.slice(start..end)),
            ) {
                map.append(name, value);
            }
            start = end;
        }
        map
    }

    pub fn set_headers(&mut self, headers: &HeaderMap) {
        self.headers = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.as_bytes().iter().map(|&b| b as char).collect(),
                )
            })
            .collect();
    }

    pub fn response_time(&self) -> SystemTime {
        from_ms(self.response_time_ms)
    }

    /// Serialized meta block: length, JSON, checksum.
    pub fn encode(&self) -> Result<Vec<u8>, CacheError> {
        let json = serde_json::to_vec(self).map_err(|e| CacheError::Corrupt(e.to_string()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + META_HASH_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
        Ok(out)
    }

    /// Parses the head of an object file. Returns the meta and the offset where
    /// the body starts, or why the head is unusable. `NeedMore(n)` asks for the
    /// first `n` bytes.
    pub fn decode(head: &[u8]) -> Result<(Meta, u64), DecodeError> {
        if head.len() < MAGIC.len() + 4 {
            return Err(DecodeError::NeedMore(MAGIC.len() + 4));
        }
        if &head[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::Corrupt("bad magic"));
        }
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&head[MAGIC.len()..MAGIC.len() + 4]);
        let meta_len = u32::from_le_bytes(len_bytes) as usize;
        if meta_len > MAX_META_LEN {
            return Err(DecodeError::Corrupt("meta too long"));
        }
        let start = MAGIC.len() + 4;
        let end = start + meta_len + META_HASH_LEN;
        if head.len() < end {
            return Err(DecodeError::NeedMore(end));
        }
        let json = &head[start..start + meta_len];
        if crc32c::crc32c(json).to_le_bytes()[..] != head[start + meta_len..end] {
            return Err(DecodeError::Corrupt("meta checksum mismatch"));
        }
        let meta: Meta =
            serde_json::from_slice(json).map_err(|_| DecodeError::Corrupt("meta unreadable"))?;
        // Stored before `Age` was bounded: its policy would overflow when asked
        // for the object's age (RFC 9111 §5.1 bounds it at 2^31).
        let unbounded_age = meta.headers.iter().any(|(n, v)| {
            n == "age"
                && (v.trim().len() > 10
                    || v.trim().parse::<u64>().unwrap_or(0) > crate::policy::MAX_AGE_SECS)
        });
        if unbounded_age {
            return Err(DecodeError::Corrupt("Age beyond 2^31 seconds"));
        }
        Ok((meta, end as u64))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    NeedMore(usize),
    Corrupt(&'static str),
}

/// The trailer closing an object file.
pub fn encode_trailer(body_crc: u32, body_len: u64) -> [u8; TRAILER_LEN as usize] {
    let mut out = [0u8; TRAILER_LEN as usize];
    out[..4].copy_from_slice(&body_crc.to_le_bytes());
    out[4..].copy_from_slice(&body_len.to_le_bytes());
    out
}

pub fn decode_trailer(bytes: &[u8; TRAILER_LEN as usize]) -> (u32, u64) {
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[..4]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[4..]);
    (u32::from_le_bytes(crc), u64::from_le_bytes(len))
}

pub fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_detects_damage() {
        let mut meta = Meta::vary_marker("http://a.test/", vec!["accept".into()], 1);
        let mut headers = HeaderMap::new();
        headers.insert("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        meta.set_headers(&headers);
        let block = meta.encode().unwrap();
        let (back, body_start) = Meta::decode(&block).unwrap();
        assert_eq!(body_start as usize, block.len());
        assert_eq!(back.key, "http://a.test/");
        assert_eq!(back.header_map()["x-bytes"].as_bytes(), b"caf\xe9");

        assert_eq!(
            Meta::decode(&block[..5]).unwrap_err(),
            DecodeError::NeedMore(12)
        );
        assert!(matches!(
            Meta::decode(&block[..block.len() - 1]).unwrap_err(),
            DecodeError::NeedMore(_)
        ));
        let mut flipped = block.clone();
        flipped[20] ^= 1;
        assert_eq!(
            Meta::decode(&flipped).unwrap_err(),
            DecodeError::Corrupt("meta checksum mismatch")
        );
        let mut bad_magic = block;
        bad_magic[0] = b'X';
        assert_eq!(
            Meta::decode(&bad_magic).unwrap_err(),
            DecodeError::Corrupt("bad magic")
        );
    }

    #[test]
    fn trailer_round_trips() {
        let crc = crc32c::crc32c(b"body");
        let t = encode_trailer(crc, 4);
        assert_eq!(decode_trailer(&t), (crc, 4));
    }
}
