//! Checks on what a binary printed.

/// Asserts that `text` contains every one of `needles`, naming the first one
/// missing and showing the text.
pub fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
