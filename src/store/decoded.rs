//! Decoded records, reused while the stored bytes are unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

/// How many decoded records a cache keeps before it starts over.
const CAP: usize = 4096;

/// A cache of decoded store records, keyed by store key and validated against the record's
/// bytes on every use: the store stays the source of truth (a record changed or deleted by
/// another node is never served from here), and only the decoding is saved.
pub(crate) struct DecodedCache<T> {
    map: Mutex<HashMap<String, Entry<T>>>,
}

/// The bytes a value was decoded from (they may hold key material: zeroized when dropped),
/// and the value.
type Entry<T> = (Zeroizing<Vec<u8>>, Arc<T>);

impl<T> Default for DecodedCache<T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> std::fmt::Debug for DecodedCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("DecodedCache").field("entries", &n).finish()
    }
}

impl<T> DecodedCache<T> {
    /// The decoded form of `bytes`, stored under `key`: from the cache when the bytes are the
    /// ones it decoded last time, else from `decode`.
    pub(crate) fn get_or_decode<E>(
        &self,
        key: &str,
        bytes: &[u8],
        decode: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Ok(map) = self.map.lock()
            && let Some((raw, value)) = map.get(key)
            && raw.as_slice() == bytes
        {
            return Ok(Arc::clone(value));
        }
        let value = Arc::new(decode()?);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAP && !map.contains_key(key) {
                map.clear();
            }
            map.insert(
                key.to_owned(),
                (Zeroizing::new(bytes.to_vec()), Arc::clone(&value)),
            );
        }
        Ok(value)
    }

    /// Drops the entry for `key`.
    pub(crate) fn forget(&self, key: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_again_when_bytes_change() {
        let c = DecodedCache::<String>::default();
        let calls = std::cell::Cell::new(0);
        let get = |bytes: &[u8]| {
            c.get_or_decode::<()>("k", bytes, || {
                calls.set(calls.get() + 1);
                Ok(String::from_utf8_lossy(bytes).into_owned())
            })
            .unwrap()
        };
        assert_eq!(*get(b"a"), "a");
        assert_eq!(*get(b"a"), "a");
        assert_eq!(*get(b"b"), "b");
        assert_eq!(calls.get(), 2);
        c.forget("k");
        assert_eq!(*get(b"b"), "b");
        assert_eq!(calls.get(), 3);
    }
}
