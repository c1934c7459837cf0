//! Hook results and `validate` failures, converted into located errors. Public
//! only through `vmstate_runtime::__private`; not a stable API.

use crate::error::{BoxError, Error, ErrorKind, PathSegment, Result};

/// Converts a hook's result.
#[inline]
pub fn hook<E: Into<BoxError>>(name: &'static str, r: std::result::Result<(), E>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(hook_error(name, e.into())),
    }
}

#[cold]
fn hook_error(name: &'static str, e: BoxError) -> Error {
    // A hook that already returns our own error keeps its kind and location.
    match e.downcast::<Error>() {
        Ok(ours) => ours.within(PathSegment::Field(name)),
        Err(other) => Error::hook(name, other),
    }
}

/// Fails a `validate` check.
#[cold]
pub fn validation_failed(check: &'static str, field: &'static str, at: u64) -> Error {
    Error::at(ErrorKind::ValidationFailed { check }, at).in_field(field, at)
}
