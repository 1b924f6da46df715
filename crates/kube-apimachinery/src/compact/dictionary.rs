//! The static dictionary of the compact encoding: Kubernetes field names (core/v1, apps/v1,
//! batch/v1, meta/v1, taken from k8s-openapi) and frequent string values (`TCP`,
//! `IfNotPresent`, `True`...), each stored as a one- or two-byte id instead of its text.
//!
//! The words are compiled in (`dictionary.txt`, one a line, the most frequent in a pod first
//! so that they get one-byte ids), so the encoding is the same in every process and nothing
//! is ever added at run time: no global interning table that grows. The encoding is never
//! persisted or sent, so the list may change between versions.

use std::sync::LazyLock;

/// The words, one a line; a word's id is its line number, from 0.
const WORDS: &str = include_str!("dictionary.txt");

/// Slots of the hash table (a power of two, more than five times the number of words, for
/// short probe chains: most strings looked up are not words).
const SLOTS: usize = 4096;

struct Dictionary {
    words: Vec<&'static str>,
    /// Open addressing, linear probing: 0 is an empty slot, otherwise the word's id + 1.
    table: Box<[u16]>,
    /// The length of the longest word: longer strings are not looked up.
    longest: usize,
}

static DICTIONARY: LazyLock<Dictionary> = LazyLock::new(|| {
    let words: Vec<&'static str> = WORDS.lines().filter(|word| !word.is_empty()).collect();
    let mut table = vec![0u16; SLOTS].into_boxed_slice();
    for (id, word) in words.iter().enumerate() {
        let mut slot = hash(word) & (SLOTS - 1);
        while table[slot] != 0 {
            slot = (slot + 1) & (SLOTS - 1);
        }
        // The list has fewer than SLOTS / 5 words (a test checks it), so id + 1 fits.
        table[slot] = u16::try_from(id + 1).unwrap_or(u16::MAX);
    }
    let longest = words.iter().map(|word| word.len()).max().unwrap_or(0);
    Dictionary {
        words,
        table,
        longest,
    }
});

/// A cheap hash of the length and the first and last eight bytes (enough to tell the words
/// apart; collisions only cost a probe).
fn hash(word: &str) -> usize {
    let bytes = word.as_bytes();
    let head = load(bytes.get(..8).unwrap_or(bytes));
    let tail = load(bytes.get(bytes.len().saturating_sub(8)..).unwrap_or(bytes));
    let mixed =
        (head ^ tail.rotate_left(29) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // Truncation is fine: only the low bits pick a slot.
    (mixed >> 32) as usize
}

/// Up to eight bytes as a little-endian integer.
fn load(bytes: &[u8]) -> u64 {
    if let Ok(eight) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(eight);
    }
    let mut buffer = [0u8; 8];
    let len = bytes.len().min(8);
    buffer[..len].copy_from_slice(&bytes[..len]);
    u64::from_le_bytes(buffer)
}

/// The number of words.
pub(super) fn len() -> usize {
    DICTIONARY.words.len()
}

/// The word with id `id`.
pub(super) fn word(id: usize) -> Option<&'static str> {
    DICTIONARY.words.get(id).copied()
}

/// The id of `text` when it is a word of the dictionary.
pub(super) fn id(text: &str) -> Option<usize> {
    let dictionary = &*DICTIONARY;
    if text.len() > dictionary.longest || text.is_empty() {
        return None;
    }
    let mut slot = hash(text) & (SLOTS - 1);
    loop {
        let entry = usize::from(*dictionary.table.get(slot)?);
        if entry == 0 {
            return None;
        }
        if dictionary.words.get(entry - 1) == Some(&text) {
            return Some(entry - 1);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_found_under_its_own_id() {
        assert!(len() > 500 && len() < SLOTS / 5, "{} words", len());
        let mut seen = std::collections::HashSet::new();
        for id_ in 0..len() {
            let text = word(id_).unwrap();
            assert!(seen.insert(text), "{text:?} is listed twice");
            assert_eq!(id(text), Some(id_), "{text:?}");
        }
        assert_eq!(word(len()), None);
        assert_eq!(id("not-a-kubernetes-field"), None);
        assert_eq!(id(""), None);
        // The fixture's most frequent keys and values get one-byte ids.
        for text in ["name", "spec", "containers", "True", "TCP", "IfNotPresent"] {
            assert!(id(text).unwrap() < 127, "{text:?}");
        }
    }
}
