//! One-call entry points: a type's body to bytes and back.

use crate::error::{Error, ErrorKind, Result};
use crate::vmstate::VmState;
use crate::wire::{Reader, Writer};

/// Saves `value`'s VMState body (fields and needed subsections) at its current
/// version, exactly as it would appear inside a QEMU section.
///
/// ```
/// use vmstate_runtime::{to_bytes, VmState};
/// #[derive(VmState, Default)]
/// #[vmstate(name = "d", version = 1)]
/// struct D { a: u16, b: [u8; 2] }
/// assert_eq!(to_bytes(&D { a: 0x0102, b: [3, 4] }).unwrap(), [1, 2, 3, 4]);
/// ```
pub fn to_bytes<T: VmState>(value: &T) -> Result<Vec<u8>, Error> {
    let mut w = Writer::new(Vec::with_capacity(64));
    value.save(&mut w)?;
    Ok(w.into_inner())
}

/// Loads a body written at `version_id` into `T::default()`; fails if bytes remain.
///
/// ```
/// use vmstate_runtime::{from_bytes, VmState};
/// #[derive(VmState, Default, Debug, PartialEq)]
/// #[vmstate(name = "d", version = 1)]
/// struct D { a: u16 }
/// assert_eq!(from_bytes::<D>(&[1, 2], 1).unwrap(), D { a: 0x0102 });
/// assert!(from_bytes::<D>(&[1, 2, 3], 1).is_err()); // trailing byte
/// assert!(from_bytes::<D>(&[1, 2], 2).is_err());    // version too new
/// ```
pub fn from_bytes<T: VmState + Default>(bytes: &[u8], version_id: u32) -> Result<T, Error> {
    let mut value = T::default();
    let mut r = Reader::new(bytes);
    value.load(&mut r, version_id)?;
    if r.remaining() != 0 {
        return Err(
            Error::at(ErrorKind::TrailingBytes(r.remaining()), r.position())
                .in_vmsd(T::DESCRIPTION.name),
        );
    }
    Ok(value)
}
