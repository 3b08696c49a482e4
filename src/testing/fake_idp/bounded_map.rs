//! A map that forgets its oldest entries.

use std::collections::{HashMap, VecDeque};

use super::MAX_OUTSTANDING;

/// A `HashMap` keyed by random tokens that keeps at most [`MAX_OUTSTANDING`] entries, dropping
/// the oldest: O(1) amortised per operation.
pub(super) struct BoundedMap<V> {
    pub(super) map: HashMap<String, V>,
    pub(super) order: VecDeque<String>,
}

impl<V> Default for BoundedMap<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> BoundedMap<V> {
    pub(super) fn insert(&mut self, key: String, value: V) {
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        while self.map.len() > MAX_OUTSTANDING {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // Keys removed by `remove` linger in `order`; compact once they dominate.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key)
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_forgets_oldest() {
        let mut m = BoundedMap::default();
        for i in 0..(MAX_OUTSTANDING + 10) {
            m.insert(i.to_string(), i);
        }
        assert_eq!(m.len(), MAX_OUTSTANDING);
        assert!(m.get("0").is_none());
        assert!(m.get(&(MAX_OUTSTANDING + 9).to_string()).is_some());
        for i in 0..(3 * MAX_OUTSTANDING) {
            let k = format!("t{i}");
            m.insert(k.clone(), i);
            m.remove(&k);
        }
        assert!(m.order.len() <= 2 * MAX_OUTSTANDING + 1024 + 1);
    }
}
