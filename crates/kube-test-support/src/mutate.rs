//! Mutations of valid inputs for the property tests, and a hang detector.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

/// The number of cases: `PROPTEST_CASES` when set, else `default` (docs/fuzzing.md).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` on another thread and fails if it does not finish within ten seconds: a hang (each
/// parse takes microseconds to milliseconds). A panic in `f` fails the test too.
pub fn within_budget<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the parser hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the parser panicked"),
    }
}

/// One edit of a valid input.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Flips one bit.
    Flip(usize, u8),
    /// Inserts a byte.
    Insert(usize, u8),
    /// Deletes a byte.
    Delete(usize),
    /// Cuts the input.
    Truncate(usize),
    /// Repeats a slice of up to 64 bytes.
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(at, len)| Edit::Duplicate(at, len)),
    ]
}

/// `bytes` after `edits`.
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Flip(at, bit) if len > 0 => bytes[at % len] ^= 1 << (bit % 8),
            Edit::Insert(at, byte) => bytes.insert(at % (len + 1), byte),
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            Edit::Duplicate(at, n) if len > 0 => {
                let at = at % len;
                let end = (at + 1 + n % 64).min(len);
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {}
        }
    }
    bytes
}

/// One of `valid` with up to eight random edits.
pub fn mutated(valid: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(valid),
        prop::collection::vec(edit(), 0..8),
    )
        .prop_map(|(bytes, edits)| apply(bytes, &edits))
}

/// Like [`mutated`], as text (invalid UTF-8 replaced).
pub fn mutated_text(valid: Vec<String>) -> impl Strategy<Value = String> {
    mutated(valid.into_iter().map(String::into_bytes).collect())
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
