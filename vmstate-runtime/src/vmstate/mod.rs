//! The VMState engine: the [`VmState`] and [`VmStateField`] traits, field
//! encodings for standard types, subsections and version handling.

mod describe_sink;
mod description;
mod field;
pub(crate) mod helpers;
mod plain;
mod special;

pub use describe_sink::{
    DescribeRecorder, DescribeSink, DescribedElement, DescribedField, DescribedVmsd, FieldStart,
    NoDescribe,
};
pub use description::{
    FieldDescription, FieldLayout, FieldType, Hooks, SubsectionDescription, VmStateDescription,
};
pub use plain::PlainField;
pub use special::{VmStateTmp, WithTmp};

use bytes::{Buf, BufMut};

use crate::error::{ErrorKind, Result};
use crate::wire::{Reader, Writer};

/// A type with a VMState description: a device (or a part of one) whose state can be
/// saved to and loaded from QEMU's VMState wire format.
///
/// Implement it with `#[derive(VmState)]`; hand-written implementations must keep
/// [`save`](VmState::save), [`load`](VmState::load) and [`DESCRIPTION`](VmState::DESCRIPTION)
/// consistent.
///
/// ```
/// use vmstate_runtime::{to_bytes, from_bytes, VmState};
///
/// #[derive(VmState, Default, Debug, PartialEq)]
/// #[vmstate(name = "counter", version = 2, minimum_version = 1)]
/// struct Counter {
///     value: u32,
///     #[vmstate(since = 2)]
///     enabled: bool,
/// }
///
/// let c = Counter { value: 7, enabled: true };
/// let bytes = to_bytes(&c).unwrap();
/// assert_eq!(bytes, [0, 0, 0, 7, 1]);
/// assert_eq!(from_bytes::<Counter>(&bytes, 2).unwrap(), c);
/// // A version-1 stream has no `enabled`: it keeps its default.
/// assert_eq!(from_bytes::<Counter>(&[0, 0, 0, 7], 1).unwrap(), Counter { value: 7, enabled: false });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `VmState`",
    label = "`{Self}` has no VMState description",
    note = "add #[derive(VmState)] to `{Self}`; a subsection or `list` element type needs its own \
            description, named after its parent, e.g. #[vmstate(name = \"parent/child\")]"
)]
pub trait VmState {
    /// The static description (name, versions, priority, fields, subsections).
    const DESCRIPTION: &'static VmStateDescription;

    /// Writes the body at the current version: pre_save hook, fields, needed
    /// subsections, post_save hook.
    fn save<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()>;

    /// Loads a body written at `version_id` into `self`: version checks, pre_load
    /// hook, fields present in that version, subsections present in the stream,
    /// post_load hook. Fields absent from the stream keep their current values.
    fn load<B: Buf>(&mut self, r: &mut Reader<B>, version_id: u32) -> Result<()>;

    /// Like [`save`](VmState::save), and reports the layout written (fields,
    /// sizes, nested bodies, subsections) to `sink`; this is what the vmdesc
    /// trailer is made from. The derive implements it; the default records only
    /// the body as a whole.
    fn save_described<B: BufMut>(
        &self,
        w: &mut Writer<B>,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        sink.begin_vmsd(Self::DESCRIPTION);
        let r = self.save(w);
        sink.end_vmsd();
        r
    }
}

/// A type that can be one field of a VMState body: integers, `bool`, arrays,
/// vectors, boxes, nested VmState structs and enums with an integer representation.
///
/// Nested structs (`#[derive(VmState)]`) implement it as QEMU's `VMSTATE_STRUCT`:
/// their body (fields then subsections) is written inline and loaded at their own
/// current version.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported VMState field type",
    label = "no VMState encoding for `{Self}`; if it is your own struct or enum, add #[derive(VmState)] to it",
    note = "supported: bool, u8..u64, i8..i64, [T; N], Vec<T> (with `varray`/`vbuffer`/`list`), \
            Box<T>, Option<Box<T>> (array of pointers), types deriving VmState, \
            and enums deriving VmState with #[repr(u8/u16/u32/u64/i8/i16/i32/i64)]"
)]
pub trait VmStateField {
    /// The element wire type, for the static description.
    const FIELD_TYPE: FieldType;

    /// Writes the value.
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()>;

    /// Loads the value in place.
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()>;

    /// Writes the value and reports nested bodies to `sink` (nested structs
    /// override this; plain values have nothing to add).
    #[inline]
    fn save_field_described<B: BufMut>(
        &self,
        w: &mut Writer<B>,
        _sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.save_field(w)
    }

    /// Writes a run of values as elements of an array, reporting each element's
    /// size and nested body to `sink` (plain values override this: their arrays
    /// are described by length alone).
    fn save_slice_described<B: BufMut>(
        items: &[Self],
        w: &mut Writer<B>,
        sink: &mut dyn DescribeSink,
    ) -> Result<()>
    where
        Self: Sized,
    {
        for (i, item) in items.iter().enumerate() {
            let start = w.position();
            sink.begin_element(i);
            let r = item.save_field_described(w, sink);
            sink.end_element(w.position() - start);
            r.map_err(|e| e.in_index(i))?;
        }
        Ok(())
    }

    /// Writes a run of values. Plain integers override this with one bulk copy.
    #[inline]
    fn save_slice<B: BufMut>(items: &[Self], w: &mut Writer<B>) -> Result<()>
    where
        Self: Sized,
    {
        for (i, item) in items.iter().enumerate() {
            item.save_field(w).map_err(|e| e.in_index(i))?;
        }
        Ok(())
    }

    /// Loads a run of values in place. Plain integers override this with one bulk copy.
    #[inline]
    fn load_slice<B: Buf>(items: &mut [Self], r: &mut Reader<B>) -> Result<()>
    where
        Self: Sized,
    {
        for (i, item) in items.iter_mut().enumerate() {
            item.load_field(r).map_err(|e| e.in_index(i))?;
        }
        Ok(())
    }
}

/// Checks `version_id` against a description's current and minimum versions, as
/// QEMU's `vmstate_load_state` does before loading anything.
///
/// ```
/// use vmstate_runtime::{check_version, VmState};
/// #[derive(VmState, Default)]
/// #[vmstate(name = "d", version = 3, minimum_version = 2)]
/// struct D { x: u8 }
/// assert!(check_version(D::DESCRIPTION, 2).is_ok());
/// assert!(check_version(D::DESCRIPTION, 4).is_err());
/// assert!(check_version(D::DESCRIPTION, 1).is_err());
/// ```
#[inline]
pub fn check_version(desc: &VmStateDescription, version_id: u32) -> Result<()> {
    if version_id > desc.version_id {
        return Err(ErrorKind::VersionTooNew {
            version: version_id,
            max: desc.version_id,
        }
        .into());
    }
    if version_id < desc.minimum_version_id {
        return Err(ErrorKind::VersionTooOld {
            version: version_id,
            min: desc.minimum_version_id,
        }
        .into());
    }
    Ok(())
}
