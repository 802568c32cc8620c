//! Discovery responses as bytes on the wire, written from resources that are already encoded.
//!
//! A response is the gRPC frame prefix and the nonce (a few bytes, per stream) followed by the
//! body: version, resources and type URL (everything else, shared). Protobuf lets fields come in
//! any order, so the per-stream part goes first and the body is never copied: every stream that
//! sends the same (type, version, resources) sends the same [`Bytes`], which the HTTP/2 layer
//! writes out as it is ([`BodyCache`] keeps it while any stream still holds it). Resources are
//! copied into a body once, as bytes: nothing is re-encoded.

use std::sync::{Arc, Mutex, Weak};

use envoy_types::pb::google::protobuf::Any;
use prost::bytes::{BufMut, Bytes, BytesMut};

use prost::encoding::{encode_varint, encoded_len_varint};

use super::Resource;

/// One response ready for the wire: the per-stream head (gRPC prefix and nonce), then the body.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub head: Bytes,
    pub body: Bytes,
}

impl Encoded {
    /// `body` with the gRPC message prefix and `nonce` (field `nonce_field`) in front of it.
    pub fn new(nonce_field: u32, nonce: &str, body: Bytes) -> Encoded {
        let field = len_field_len(nonce_field, nonce.len());
        let mut head = BytesMut::with_capacity(5 + field);
        head.put_u8(0); // not compressed
        head.put_u32((field + body.len()) as u32);
        put_bytes_field(&mut head, nonce_field, nonce.as_bytes());
        Encoded {
            head: head.freeze(),
            body,
        }
    }

    /// The message as one buffer, without the gRPC prefix (tests and unary fetches).
    pub fn message(&self) -> Vec<u8> {
        let mut out = self.head[5..].to_vec();
        out.extend_from_slice(&self.body);
        out
    }
}

/// `DiscoveryResponse` fields.
pub mod sotw {
    pub const VERSION: u32 = 1;
    pub const RESOURCES: u32 = 2;
    pub const TYPE_URL: u32 = 4;
    pub const NONCE: u32 = 5;
}

/// `DeltaDiscoveryResponse` fields, and those of its `Resource`.
pub mod delta {
    pub const SYSTEM_VERSION: u32 = 1;
    pub const RESOURCES: u32 = 2;
    pub const TYPE_URL: u32 = 4;
    pub const NONCE: u32 = 5;
    pub const REMOVED: u32 = 6;
    pub const RESOURCE_VERSION: u32 = 1;
    pub const RESOURCE_ANY: u32 = 2;
    pub const RESOURCE_NAME: u32 = 3;
}

/// The body of a state-of-the-world response: `version`, `resources`, `type_url`.
pub fn sotw_body<'a>(
    version: &str,
    type_url: &str,
    resources: impl Iterator<Item = &'a Resource> + Clone,
) -> Vec<u8> {
    let anys = resources.clone().map(|r| any_len(&r.any));
    let len = len_field_len(sotw::VERSION, version.len())
        + anys
            .map(|l| len_field_len(sotw::RESOURCES, l))
            .sum::<usize>()
        + len_field_len(sotw::TYPE_URL, type_url.len());
    let mut b = Vec::with_capacity(len);
    put_bytes_field(&mut b, sotw::VERSION, version.as_bytes());
    for r in resources {
        put_key(&mut b, sotw::RESOURCES, any_len(&r.any));
        put_any(&mut b, &r.any);
    }
    put_bytes_field(&mut b, sotw::TYPE_URL, type_url.as_bytes());
    debug_assert_eq!(b.len(), len);
    b
}

/// The body of a delta response: `system_version_info`, the resources (each with its name and
/// version), `type_url` and the names removed.
pub fn delta_body<'a>(
    version: &str,
    type_url: &str,
    resources: impl Iterator<Item = &'a Resource> + Clone,
    removed: &[String],
) -> Vec<u8> {
    let len = len_field_len(delta::SYSTEM_VERSION, version.len())
        + resources
            .clone()
            .map(|r| len_field_len(delta::RESOURCES, delta_resource_len(r)))
            .sum::<usize>()
        + len_field_len(delta::TYPE_URL, type_url.len())
        + removed
            .iter()
            .map(|n| len_field_len(delta::REMOVED, n.len()))
            .sum::<usize>();
    let mut b = Vec::with_capacity(len);
    put_bytes_field(&mut b, delta::SYSTEM_VERSION, version.as_bytes());
    for r in resources {
        put_key(&mut b, delta::RESOURCES, delta_resource_len(r));
        put_bytes_field(&mut b, delta::RESOURCE_VERSION, r.version.as_bytes());
        put_key(&mut b, delta::RESOURCE_ANY, any_len(&r.any));
        put_any(&mut b, &r.any);
        put_bytes_field(&mut b, delta::RESOURCE_NAME, r.name.as_bytes());
    }
    put_bytes_field(&mut b, delta::TYPE_URL, type_url.as_bytes());
    for n in removed {
        put_bytes_field(&mut b, delta::REMOVED, n.as_bytes());
    }
    debug_assert_eq!(b.len(), len);
    b
}

fn delta_resource_len(r: &Resource) -> usize {
    len_field_len(delta::RESOURCE_VERSION, r.version.len())
        + len_field_len(delta::RESOURCE_ANY, any_len(&r.any))
        + len_field_len(delta::RESOURCE_NAME, r.name.len())
}

/// `google.protobuf.Any`: type URL (1) and value (2). Empty fields are left out, as prost does.
fn any_len(a: &Any) -> usize {
    opt_len(1, a.type_url.len()) + opt_len(2, a.value.len())
}

fn put_any(b: &mut impl BufMut, a: &Any) {
    if !a.type_url.is_empty() {
        put_bytes_field(b, 1, a.type_url.as_bytes());
    }
    if !a.value.is_empty() {
        put_bytes_field(b, 2, &a.value);
    }
}

fn opt_len(tag: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len_field_len(tag, len)
    }
}

/// Size of a length-delimited field `tag` of `len` bytes, key and length included.
fn len_field_len(tag: u32, len: usize) -> usize {
    encoded_len_varint(u64::from(tag << 3 | 2)) + encoded_len_varint(len as u64) + len
}

fn put_key(b: &mut impl BufMut, tag: u32, len: usize) {
    encode_varint(u64::from(tag << 3 | 2), b);
    encode_varint(len as u64, b);
}

fn put_bytes_field(b: &mut impl BufMut, tag: u32, v: &[u8]) {
    put_key(b, tag, v.len());
    b.put_slice(v);
}

/// The body a type snapshot's full response has, while some stream still holds it: encoded by
/// the first stream that needs it, shared by the others, freed once the last has written it out
/// (a snapshot no stream is sending costs nothing here).
#[derive(Debug, Default)]
pub struct BodyCache {
    sotw: Mutex<Weak<Vec<u8>>>,
    delta: Mutex<Weak<Vec<u8>>>,
}

impl BodyCache {
    /// The shared full state-of-the-world body, made with `make` when no stream holds one.
    pub fn sotw(&self, make: impl FnOnce() -> Vec<u8>) -> Bytes {
        shared(&self.sotw, make)
    }

    /// The shared delta body carrying every resource and no removals.
    pub fn delta(&self, make: impl FnOnce() -> Vec<u8>) -> Bytes {
        shared(&self.delta, make)
    }
}

/// A copy starts empty: it belongs to another snapshot.
impl Clone for BodyCache {
    fn clone(&self) -> BodyCache {
        BodyCache::default()
    }
}

/// Not part of a snapshot's content.
impl PartialEq for BodyCache {
    fn eq(&self, _: &BodyCache) -> bool {
        true
    }
}

/// Lets the bytes of an `Arc` be a [`Bytes`], so the cache can hold them weakly.
struct Owner(Arc<Vec<u8>>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn shared(slot: &Mutex<Weak<Vec<u8>>>, make: impl FnOnce() -> Vec<u8>) -> Bytes {
    // A panic while holding the slot cannot leave it inconsistent: it is a single pointer.
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = match slot.upgrade() {
        Some(b) => b,
        None => {
            let b = Arc::new(make());
            *slot = Arc::downgrade(&b);
            b
        }
    };
    Bytes::from_owner(Owner(bytes))
}

#[cfg(test)]
mod tests;
