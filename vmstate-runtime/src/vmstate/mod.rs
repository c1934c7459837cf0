//! The VMState engine: the [`VmState`] and [`VmStateField`] traits and the code
//! behind them.
//!
//! * `description`: the static [`VmStateDescription`] every type carries;
//! * `field`: [`VmStateField`] for the standard types (integers, bool, arrays,
//!   boxes, arrays of pointers);
//! * `plain`: runs of fixed-size fields saved and loaded with one bounds check;
//! * `encodings`: the encodings an attribute selects (variable arrays, bitmaps,
//!   lists, timers, `equal`, `positive_le`) and their QEMU info names;
//! * `subsection`: subsection headers on save and their matching on load;
//! * `with_tmp`: temporary views of a parent ([`VmStateTmp`], [`WithTmp`]);
//! * `computed`: values computed just before saving ([`SaveComputed`]);
//! * `hooks`: pre/post save/load hook results and `validate` failures;
//! * `describe_sink`: recording a body's layout while it is saved (vmdesc).
//!
//! There is one save path: [`VmState::save_with`], generic over the
//! [`DescribeSink`]. [`VmState::save`] passes [`NoDescribe`] (QEMU's NULL vmdesc),
//! for which every report compiles away; [`VmState::save_described`] passes a
//! recorder.

mod computed;
pub(crate) mod describe_sink;
mod description;
pub(crate) mod encodings;
mod field;
pub(crate) mod hooks;
pub(crate) mod plain;
pub(crate) mod subsection;
pub(crate) mod with_tmp;

pub use computed::{ComputedValue, SaveComputed};
pub use describe_sink::{
    DescribeRecorder, DescribeSink, DescribedElement, DescribedField, DescribedVmsd, FieldStart,
    NoDescribe,
};
pub use description::{
    FieldDescription, FieldLayout, FieldType, Hooks, SubsectionDescription, VmStateDescription,
};
pub use with_tmp::{VmStateTmp, WithTmp};

use bytes::{Buf, BufMut};

use crate::error::Result;
use crate::wire::{Reader, Writer};

/// A type with a VMState description: a device (or a part of one) whose state can be
/// saved to and loaded from QEMU's VMState wire format.
///
/// Implement it with `#[derive(VmState)]`; a hand-written implementation provides
/// [`save_with`](VmState::save_with) (the one save path: [`save`](VmState::save) and
/// [`save_described`](VmState::save_described) call it), [`load`](VmState::load) and
/// [`DESCRIPTION`](VmState::DESCRIPTION), and must keep the three consistent.
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
    ///
    /// ```
    /// use vmstate_runtime::{MigrationPriority, VmState};
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "rtc", version = 3, minimum_version = 2, priority = Iommu)]
    /// struct Rtc { cmos: [u8; 4], irq: u32 }
    ///
    /// let d = Rtc::DESCRIPTION;
    /// assert_eq!((d.name, d.version_id, d.minimum_version_id), ("rtc", 3, 2));
    /// assert_eq!(d.priority, MigrationPriority::Iommu);
    /// assert_eq!(d.fields.iter().map(|f| f.name).collect::<Vec<_>>(), ["cmos", "irq"]);
    /// ```
    const DESCRIPTION: &'static VmStateDescription;

    /// Writes the body at the current version (pre_save hook, fields, needed
    /// subsections, post_save hook) and reports its layout to `sink`. This is the
    /// one save path the derive generates; [`save`](VmState::save) and
    /// [`save_described`](VmState::save_described) call it. It is generic over the
    /// sink, so with [`NoDescribe`] every report compiles away.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::{DescribeRecorder, NoDescribe};
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u16, b: bool }
    ///
    /// let mut w = Writer::new(Vec::new());
    /// Dev { a: 0x0102, b: true }.save_with(&mut w, &mut NoDescribe).unwrap();
    /// assert_eq!(w.into_inner(), [1, 2, 1]);
    ///
    /// let mut rec = DescribeRecorder::new();
    /// Dev::default().save_with(&mut Writer::new(Vec::new()), &mut rec).unwrap();
    /// assert_eq!(rec.finish().unwrap().fields.len(), 2);
    /// ```
    fn save_with<B: BufMut, S: DescribeSink + ?Sized>(
        &self,
        w: &mut Writer<B>,
        sink: &mut S,
    ) -> Result<()>;

    /// Writes the body at the current version: pre_save hook, fields, needed
    /// subsections, post_save hook.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u16, b: bool }
    ///
    /// let mut w = Writer::new(Vec::new());
    /// Dev { a: 0x0102, b: true }.save(&mut w).unwrap();
    /// assert_eq!(w.into_inner(), [1, 2, 1]);
    /// ```
    #[inline]
    fn save<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()> {
        self.save_with(w, &mut NoDescribe)
    }

    /// Loads a body written at `version_id` into `self`: version checks, pre_load
    /// hook, fields present in that version, subsections present in the stream,
    /// post_load hook. Fields absent from the stream keep their current values.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 2, minimum_version = 1)]
    /// struct Dev { a: u16, #[vmstate(since = 2)] b: u8 }
    ///
    /// // A version-1 body has no `b`: it keeps its current value.
    /// let mut dev = Dev { a: 0, b: 9 };
    /// let mut r = Reader::new(&[0, 5][..]);
    /// dev.load(&mut r, 1).unwrap();
    /// assert_eq!((dev.a, dev.b), (5, 9));
    /// assert_eq!(r.remaining(), 0);
    /// // Versions outside minimum..=current are refused.
    /// assert!(dev.load(&mut Reader::new(&[0, 5, 1][..]), 3).is_err());
    /// ```
    fn load<B: Buf>(&mut self, r: &mut Reader<B>, version_id: u32) -> Result<()>;

    /// Like [`save`](VmState::save), and reports the layout written (fields,
    /// sizes, nested bodies, subsections) to `sink`; this is what the vmdesc
    /// trailer is made from. It is [`save_with`](VmState::save_with) with a
    /// dynamic sink (one call per body, not per field, decides what to record).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::DescribeRecorder;
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 4)]
    /// struct Dev { a: u32, regs: [u8; 2] }
    ///
    /// let mut w = Writer::new(Vec::new());
    /// let mut rec = DescribeRecorder::new();
    /// Dev { a: 1, regs: [2, 3] }.save_described(&mut w, &mut rec).unwrap();
    /// assert_eq!(w.into_inner(), [0, 0, 0, 1, 2, 3]); // the same bytes as `save`
    /// let body = rec.finish().unwrap();
    /// assert_eq!((body.vmsd_name, body.version), ("dev", 4));
    /// assert_eq!(body.fields.iter().map(|f| (f.name, f.size)).collect::<Vec<_>>(), [("a", 4), ("regs", 2)]);
    /// ```
    fn save_described<B: BufMut>(
        &self,
        w: &mut Writer<B>,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.save_with(w, sink)
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
/// ```
/// use vmstate_runtime::wire::{Reader, Writer};
/// use vmstate_runtime::VmStateField;
///
/// // Standard types are fields: big-endian integers, bools, arrays ...
/// assert_eq!(<[u16; 3]>::FIELD_TYPE.info, "uint16");
/// assert_eq!(<[u16; 3]>::FIELD_TYPE.array_len, Some(3));
///
/// let mut w = Writer::new(Vec::new());
/// [0x0102u16, 0x0304].save_field(&mut w).unwrap();
/// true.save_field(&mut w).unwrap();
/// let bytes = w.into_inner();
/// assert_eq!(bytes, [1, 2, 3, 4, 1]);
///
/// let (mut pair, mut flag) = ([0u16; 2], false);
/// let mut r = Reader::new(&bytes[..]);
/// pair.load_field(&mut r).unwrap();
/// flag.load_field(&mut r).unwrap();
/// assert_eq!((pair, flag), ([0x0102, 0x0304], true));
/// ```
pub trait VmStateField {
    /// The element wire type, for the static description.
    ///
    /// ```
    /// use vmstate_runtime::VmStateField;
    ///
    /// assert_eq!(u32::FIELD_TYPE.info, "uint32");
    /// assert_eq!(u32::FIELD_TYPE.size, Some(4));
    /// assert_eq!(bool::FIELD_TYPE.info, "bool");
    /// // Nested arrays are flattened.
    /// assert_eq!(<[[u8; 2]; 3]>::FIELD_TYPE.array_len, Some(6));
    /// ```
    const FIELD_TYPE: FieldType;

    /// Writes the value.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// (-2i32).save_field(&mut w).unwrap();
    /// assert_eq!(w.into_inner(), [0xff, 0xff, 0xff, 0xfe]);
    /// ```
    fn save_field<B: BufMut>(&self, w: &mut Writer<B>) -> Result<()>;

    /// Loads the value in place.
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut v = 0u16;
    /// v.load_field(&mut Reader::new(&[0x12, 0x34][..])).unwrap();
    /// assert_eq!(v, 0x1234);
    /// let mut b = false;
    /// assert!(b.load_field(&mut Reader::new(&[2][..])).is_err()); // not a bool
    /// ```
    fn load_field<B: Buf>(&mut self, r: &mut Reader<B>) -> Result<()>;

    /// Writes the value and reports nested bodies to `sink`: the generic save path
    /// (nested structs override it; plain values have nothing to report and just
    /// [`save_field`](VmStateField::save_field)).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::NoDescribe;
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// 7u8.save_field_with(&mut w, &mut NoDescribe).unwrap();
    /// assert_eq!(w.into_inner(), [7]);
    /// ```
    #[inline]
    fn save_field_with<B: BufMut, S: DescribeSink + ?Sized>(
        &self,
        w: &mut Writer<B>,
        _sink: &mut S,
    ) -> Result<()> {
        self.save_field(w)
    }

    /// [`save_field_with`](VmStateField::save_field_with) with a dynamic sink.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::NoDescribe;
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmStateField;
    ///
    /// // A plain value has no nested body: it just writes itself.
    /// let mut w = Writer::new(Vec::new());
    /// 7u8.save_field_described(&mut w, &mut NoDescribe).unwrap();
    /// assert_eq!(w.into_inner(), [7]);
    /// ```
    #[inline]
    fn save_field_described<B: BufMut>(
        &self,
        w: &mut Writer<B>,
        sink: &mut dyn DescribeSink,
    ) -> Result<()> {
        self.save_field_with(w, sink)
    }

    /// Writes a run of values as elements of an array, reporting each element's
    /// size and nested body to `sink` while it records (plain values override
    /// this: their arrays are described by length alone). Without recording it is
    /// [`save_slice`](VmStateField::save_slice).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::{DescribeSink, FieldStart, VmStateDescription};
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::{VmState, VmStateField};
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "elem", version = 1)]
    /// struct Elem { v: u16 }
    ///
    /// /// Counts the elements it is told about.
    /// #[derive(Default)]
    /// struct Sizes(Vec<u64>);
    /// impl DescribeSink for Sizes {
    ///     fn begin_vmsd(&mut self, _: &'static VmStateDescription) {}
    ///     fn end_vmsd(&mut self) {}
    ///     fn begin_field(&mut self, _: FieldStart) {}
    ///     fn end_field(&mut self, _: u64) {}
    ///     fn end_element(&mut self, size: u64) { self.0.push(size) }
    /// }
    ///
    /// let mut w = Writer::new(Vec::new());
    /// let mut sizes = Sizes::default();
    /// Elem::save_slice_with(&[Elem { v: 1 }, Elem { v: 2 }], &mut w, &mut sizes).unwrap();
    /// assert_eq!(sizes.0, [2, 2]);
    /// assert_eq!(w.into_inner(), [0, 1, 0, 2]);
    /// ```
    fn save_slice_with<B: BufMut, S: DescribeSink + ?Sized>(
        items: &[Self],
        w: &mut Writer<B>,
        sink: &mut S,
    ) -> Result<()>
    where
        Self: Sized,
    {
        if !sink.is_recording() {
            return Self::save_slice(items, w);
        }
        for (i, item) in items.iter().enumerate() {
            let start = w.position();
            sink.begin_element(i);
            let r = item.save_field_with(w, sink);
            sink.end_element(w.position() - start);
            r.map_err(|e| e.in_index(i))?;
        }
        Ok(())
    }

    /// [`save_slice_with`](VmStateField::save_slice_with) with a dynamic sink.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::DescribeRecorder;
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// u16::save_slice_described(&[1, 2], &mut w, &mut DescribeRecorder::new()).unwrap();
    /// assert_eq!(w.into_inner(), [0, 1, 0, 2]);
    /// ```
    fn save_slice_described<B: BufMut>(
        items: &[Self],
        w: &mut Writer<B>,
        sink: &mut dyn DescribeSink,
    ) -> Result<()>
    where
        Self: Sized,
    {
        Self::save_slice_with(items, w, sink)
    }

    /// Writes a run of values. Plain integers override this with one bulk copy.
    ///
    /// ```
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut w = Writer::new(Vec::new());
    /// u16::save_slice(&[1, 0x0203], &mut w).unwrap();
    /// assert_eq!(w.into_inner(), [0, 1, 2, 3]);
    /// ```
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
    ///
    /// ```
    /// use vmstate_runtime::wire::Reader;
    /// use vmstate_runtime::VmStateField;
    ///
    /// let mut regs = [0u32; 2];
    /// u32::load_slice(&mut regs, &mut Reader::new(&[0, 0, 0, 1, 0, 0, 0, 2][..])).unwrap();
    /// assert_eq!(regs, [1, 2]);
    /// // An invalid element is reported with its index.
    /// let mut flags = [false; 3];
    /// let err = bool::load_slice(&mut flags, &mut Reader::new(&[1, 0, 5][..])).unwrap_err();
    /// assert_eq!(err.path_string(), "[2]");
    /// ```
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
