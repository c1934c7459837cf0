//! Checking an error's kind against an `ErrorKind` pattern, the one check
//! every error test makes.

/// A check of an error's kind, as a `fn(&ErrorKind) -> bool`:
/// `kind! { ErrorKind::BadNullMarker(0x31) }`.
#[allow(unused_macros)]
macro_rules! kind {
    ($($pattern:tt)+) => {
        |k: &vmstate_runtime::ErrorKind| matches!(k, $($pattern)+)
    };
}

/// Asserts that the kind of error `e` matches a pattern, showing the error
/// otherwise: `assert_kind!(e, ErrorKind::ListTooLong { max: 2 })`.
#[allow(unused_macros)]
macro_rules! assert_kind {
    ($e:expr, $($pattern:tt)+) => {{
        let e = &$e;
        assert!(matches!(e.kind(), $($pattern)+), "{e}");
    }};
}

#[allow(unused_imports)]
pub(crate) use {assert_kind, kind};
