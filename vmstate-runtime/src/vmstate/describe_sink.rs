//! Recording the layout of a body while it is saved: which fields were written and
//! how many bytes each took. This is what QEMU's vmdesc trailer (and its
//! `analyze-migration.py`) is made from; sizes of variable fields and element
//! counts of variable arrays are only known while saving, so the generated
//! `save_with` reports them here.
//!
//! The `begin_vmsd`/`save_field`/`end_vmsd` functions at the end are what the
//! generated code calls: each asks [`DescribeSink::is_recording`] first, so with
//! [`NoDescribe`] (a plain `save`) they compile down to the bare write.

use bytes::BufMut;

use super::{FieldDescription, FieldLayout, VmStateDescription, VmStateField};
use crate::error::{Error, Result};
use crate::wire::Writer;

/// What a sink is told when a field starts.
///
/// ```
/// use vmstate_runtime::vmstate::{DescribeSink, FieldStart};
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::{VmState, VmStateDescription};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { a: u8, regs: [u16; 3] }
///
/// /// Collects what each `begin_field` is told.
/// #[derive(Default)]
/// struct Starts(Vec<(&'static str, Option<usize>)>);
/// impl DescribeSink for Starts {
///     fn begin_vmsd(&mut self, _: &'static VmStateDescription) {}
///     fn end_vmsd(&mut self) {}
///     fn begin_field(&mut self, start: FieldStart) {
///         self.0.push((start.field.name, start.elements));
///     }
///     fn end_field(&mut self, _: u64) {}
/// }
///
/// let mut starts = Starts::default();
/// Dev::default().save_described(&mut Writer::new(Vec::new()), &mut starts).unwrap();
/// assert_eq!(starts.0, [("a", None), ("regs", Some(3))]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FieldStart {
    /// The field's static description (name, info, layout, test).
    pub field: &'static FieldDescription,
    /// When the vmsd declares several fields of this name: this one's position
    /// among them (QEMU then names it `name[k]`).
    pub duplicate_index: Option<usize>,
    /// Number of elements written (fixed arrays: their length; variable arrays:
    /// the count at save time); `None` for single values.
    pub elements: Option<usize>,
}

/// Receives a body's structure during [`VmState::save_with`](super::VmState::save_with)
/// (and so [`save_described`](super::VmState::save_described)).
///
/// Calls nest: `begin_vmsd` … `end_vmsd` around every body (the top level, a nested
/// struct inside a field or array element, or a subsection directly inside its
/// parent's body), `begin_field` … `end_field` around every field written, and
/// `begin_element` … `end_element` around each element of an array of structs.
///
/// ```
/// use vmstate_runtime::vmstate::{DescribeSink, FieldStart};
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::{VmState, VmStateDescription};
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "inner", version = 1)]
/// struct Inner { x: u32 }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "outer", version = 1)]
/// struct Outer { a: u8, inner: Inner }
///
/// /// Logs the nesting of calls.
/// #[derive(Default)]
/// struct Log(Vec<String>);
/// impl DescribeSink for Log {
///     fn begin_vmsd(&mut self, desc: &'static VmStateDescription) {
///         self.0.push(format!("vmsd {}", desc.name));
///     }
///     fn end_vmsd(&mut self) {
///         self.0.push("end vmsd".into());
///     }
///     fn begin_field(&mut self, start: FieldStart) {
///         self.0.push(format!("field {}", start.field.name));
///     }
///     fn end_field(&mut self, size: u64) {
///         self.0.push(format!("end field ({size} B)"));
///     }
/// }
///
/// let mut log = Log::default();
/// Outer::default().save_described(&mut Writer::new(Vec::new()), &mut log).unwrap();
/// assert_eq!(
///     log.0,
///     [
///         "vmsd outer",
///         "field a", "end field (1 B)",
///         "field inner", "vmsd inner", "field x", "end field (4 B)", "end vmsd", "end field (4 B)",
///         "end vmsd",
///     ]
/// );
/// ```
pub trait DescribeSink {
    /// A body of `desc` starts (written at its current version).
    fn begin_vmsd(&mut self, desc: &'static VmStateDescription);
    /// The body ends.
    fn end_vmsd(&mut self);
    /// A field starts.
    fn begin_field(&mut self, start: FieldStart);
    /// The field ended after `size` bytes.
    fn end_field(&mut self, size: u64);
    /// Element `index` of an array of structs starts.
    fn begin_element(&mut self, _index: usize) {}
    /// The element ended after `size` bytes.
    fn end_element(&mut self, _size: u64) {}
    /// Whether anything is recorded. A sink that records nothing says `false`, and
    /// the save path then skips every report (and works out no sizes or names).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::{DescribeRecorder, DescribeSink, NoDescribe};
    ///
    /// assert!(DescribeRecorder::new().is_recording());
    /// assert!(!NoDescribe.is_recording());
    /// ```
    #[inline]
    fn is_recording(&self) -> bool {
        true
    }
}

/// One described body: what QEMU's vmdesc lists for a vmsd.
///
/// ```
/// use vmstate_runtime::vmstate::{DescribeRecorder, DescribedVmsd};
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev/sub", version = 1)]
/// struct Sub { s: u8 }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 2)]
/// struct Dev { a: u16, #[vmstate(subsection)] sub: Sub }
///
/// let mut rec = DescribeRecorder::new();
/// Dev::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
/// let d: DescribedVmsd = rec.finish().unwrap();
/// assert_eq!((d.vmsd_name, d.version), ("dev", 2));
/// assert_eq!(d.fields.len(), 1);
/// assert_eq!(d.subsections[0].vmsd_name, "dev/sub");
/// assert_eq!(d.subsections[0].fields[0].name, "s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedVmsd {
    /// vmsd name.
    pub vmsd_name: &'static str,
    /// Version written.
    pub version: u32,
    /// Fields in order.
    pub fields: Vec<DescribedField>,
    /// Subsections that were written, in order.
    pub subsections: Vec<DescribedVmsd>,
}

/// One described field.
///
/// ```
/// use vmstate_runtime::vmstate::{DescribeRecorder, DescribedField};
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "inner", version = 1)]
/// struct Inner { x: u32 }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { regs: [u16; 4], inner: Inner }
///
/// let mut rec = DescribeRecorder::new();
/// Dev::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
/// let d = rec.finish().unwrap();
/// let regs: &DescribedField = &d.fields[0];
/// assert_eq!((regs.name, regs.info, regs.array_len, regs.size), ("regs", "uint16", Some(4), 8));
/// assert!(regs.compressible);
/// let inner = &d.fields[1];
/// assert_eq!((inner.info, inner.size), ("struct", 4));
/// assert_eq!(inner.nested.as_ref().unwrap().vmsd_name, "inner");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedField {
    /// Field name.
    pub name: &'static str,
    /// Position among same-named fields of the vmsd, when there are several.
    pub duplicate_index: Option<usize>,
    /// QEMU info name.
    pub info: &'static str,
    /// Number of elements written (`None` for single values).
    pub array_len: Option<usize>,
    /// Whether QEMU would describe the elements with one entry (no presence test,
    /// and for structs: no tests or subsections anywhere inside).
    pub compressible: bool,
    /// Bytes written (including nested subsections).
    pub size: u64,
    /// The nested body for struct fields.
    pub nested: Option<Box<DescribedVmsd>>,
    /// For arrays of structs: each element's size and body.
    pub elements: Vec<DescribedElement>,
}

/// One element of an array of structs.
///
/// ```
/// use vmstate_runtime::vmstate::{DescribeRecorder, DescribedElement};
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "ch", version = 1)]
/// struct Channel { count: u16 }
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "pit", version = 1)]
/// struct Pit { channels: [Channel; 3] }
///
/// let mut rec = DescribeRecorder::new();
/// Pit::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
/// let d = rec.finish().unwrap();
/// let elements: &[DescribedElement] = &d.fields[0].elements;
/// assert_eq!(elements.len(), 3);
/// assert_eq!(elements[2].size, 2);
/// assert_eq!(elements[2].nested.as_ref().unwrap().vmsd_name, "ch");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedElement {
    /// Bytes written for the element.
    pub size: u64,
    /// Its body.
    pub nested: Option<Box<DescribedVmsd>>,
}

impl FieldDescription {
    /// Whether QEMU describes this field's elements with a single entry
    /// (`vmsd_can_compress`): no presence test, and for structs recursively no
    /// tests and no subsections.
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// fn always(_: &Dev, _: u32) -> bool {
    ///     true
    /// }
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: [u8; 4], #[vmstate(test = always)] b: [u8; 4] }
    ///
    /// assert!(Dev::DESCRIPTION.field("a").unwrap().compressible());
    /// assert!(!Dev::DESCRIPTION.field("b").unwrap().compressible()); // presence test
    /// ```
    pub fn compressible(&self) -> bool {
        !self.has_test && self.ty.nested.is_none_or(VmStateDescription::compressible)
    }
}

impl VmStateDescription {
    /// Whether a body of this description always has the same shape: no
    /// subsections and only compressible fields.
    ///
    /// ```
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev/extra", version = 1)]
    /// struct Extra { x: u8 }
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "plain", version = 1)]
    /// struct Plain { a: u32, b: [u8; 2] }
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u8, #[vmstate(subsection)] extra: Extra }
    ///
    /// assert!(Plain::DESCRIPTION.compressible());
    /// assert!(!Dev::DESCRIPTION.compressible()); // it has a subsection
    /// ```
    pub fn compressible(&self) -> bool {
        self.subsections.is_empty() && self.fields.iter().all(FieldDescription::compressible)
    }
}

enum Frame {
    Vmsd(DescribedVmsd),
    Field(DescribedField),
    Element(DescribedElement),
}

/// A [`DescribeSink`] that builds the [`DescribedVmsd`] tree.
///
/// ```
/// use vmstate_runtime::vmstate::DescribeRecorder;
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { a: u16, b: [u8; 3] }
///
/// let mut rec = DescribeRecorder::new();
/// Dev::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
/// let d = rec.finish().unwrap();
/// assert_eq!(d.fields[1].name, "b");
/// assert_eq!((d.fields[1].size, d.fields[1].array_len), (3, Some(3)));
/// ```
#[derive(Default)]
pub struct DescribeRecorder {
    stack: Vec<Frame>,
    done: Option<DescribedVmsd>,
}

impl DescribeRecorder {
    /// An empty recorder.
    ///
    /// ```
    /// use vmstate_runtime::vmstate::DescribeRecorder;
    ///
    /// // Nothing recorded yet: no body.
    /// assert!(DescribeRecorder::new().finish().is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded top-level body (`None` if nothing complete was recorded).
    ///
    /// ```
    /// use vmstate_runtime::vmstate::DescribeRecorder;
    /// use vmstate_runtime::wire::Writer;
    /// use vmstate_runtime::VmState;
    ///
    /// #[derive(VmState, Default)]
    /// #[vmstate(name = "dev", version = 1)]
    /// struct Dev { a: u8 }
    ///
    /// let mut rec = DescribeRecorder::new();
    /// Dev::default().save_described(&mut Writer::new(Vec::new()), &mut rec).unwrap();
    /// let d = rec.finish().expect("one complete body");
    /// assert_eq!(d.vmsd_name, "dev");
    /// ```
    pub fn finish(self) -> Option<DescribedVmsd> {
        self.done
    }
}

impl DescribeSink for DescribeRecorder {
    fn begin_vmsd(&mut self, desc: &'static VmStateDescription) {
        self.stack.push(Frame::Vmsd(DescribedVmsd {
            vmsd_name: desc.name,
            version: desc.version_id,
            fields: Vec::new(),
            subsections: Vec::new(),
        }));
    }

    fn end_vmsd(&mut self) {
        let Some(Frame::Vmsd(v)) = self.stack.pop() else {
            return;
        };
        match self.stack.last_mut() {
            Some(Frame::Field(f)) => f.nested = Some(Box::new(v)),
            Some(Frame::Element(e)) => e.nested = Some(Box::new(v)),
            Some(Frame::Vmsd(parent)) => parent.subsections.push(v),
            None => self.done = Some(v),
        }
    }

    fn begin_field(&mut self, start: FieldStart) {
        self.stack.push(Frame::Field(DescribedField {
            name: start.field.name,
            duplicate_index: start.duplicate_index,
            info: start.field.ty.info,
            array_len: start.elements,
            compressible: start.field.compressible(),
            size: 0,
            nested: None,
            elements: Vec::new(),
        }));
    }

    fn end_field(&mut self, size: u64) {
        let Some(Frame::Field(mut f)) = self.stack.pop() else {
            return;
        };
        f.size = size;
        if let Some(Frame::Vmsd(v)) = self.stack.last_mut() {
            v.fields.push(f);
        }
    }

    fn begin_element(&mut self, _index: usize) {
        self.stack.push(Frame::Element(DescribedElement {
            size: 0,
            nested: None,
        }));
    }

    fn end_element(&mut self, size: u64) {
        let Some(Frame::Element(mut e)) = self.stack.pop() else {
            return;
        };
        e.size = size;
        if let Some(Frame::Field(f)) = self.stack.last_mut() {
            f.elements.push(e);
        }
    }
}

/// A sink that records nothing: what [`VmState::save`](super::VmState::save) passes
/// (QEMU passes a NULL vmdesc), and for `save_described` callers that only want bytes.
///
/// ```
/// use vmstate_runtime::vmstate::NoDescribe;
/// use vmstate_runtime::wire::Writer;
/// use vmstate_runtime::VmState;
///
/// #[derive(VmState, Default)]
/// #[vmstate(name = "dev", version = 1)]
/// struct Dev { a: u16 }
///
/// let mut w = Writer::new(Vec::new());
/// Dev { a: 3 }.save_described(&mut w, &mut NoDescribe).unwrap();
/// assert_eq!(w.into_inner(), [0, 3]);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDescribe;

impl DescribeSink for NoDescribe {
    #[inline(always)]
    fn begin_vmsd(&mut self, _: &'static VmStateDescription) {}
    #[inline(always)]
    fn end_vmsd(&mut self) {}
    #[inline(always)]
    fn begin_field(&mut self, _: FieldStart) {}
    #[inline(always)]
    fn end_field(&mut self, _: u64) {}
    #[inline(always)]
    fn is_recording(&self) -> bool {
        false
    }
}

// `save_described` takes `&mut dyn DescribeSink`: the trait must stay dyn-compatible
// (no associated consts or generic methods).
static_assertions::assert_obj_safe!(DescribeSink);

/// Whether `sink` records (generated code: the plain-run fast path is taken only
/// when it does not).
#[inline(always)]
pub fn is_recording<S: DescribeSink + ?Sized>(sink: &S) -> bool {
    sink.is_recording()
}

/// A body of `desc` starts.
#[inline(always)]
pub fn begin_vmsd<S: DescribeSink + ?Sized>(sink: &mut S, desc: &'static VmStateDescription) {
    if sink.is_recording() {
        sink.begin_vmsd(desc);
    }
}

/// The body ends.
#[inline(always)]
pub fn end_vmsd<S: DescribeSink + ?Sized>(sink: &mut S) {
    if sink.is_recording() {
        sink.end_vmsd();
    }
}

/// Writes field `index` of `desc` with `write`, between the sink's `begin_field`
/// and `end_field`; a failure is located at the field. `count` is a variable
/// array's element count at save time (fixed arrays take theirs from the layout).
#[inline(always)]
pub fn save_field<B, S, F>(
    w: &mut Writer<B>,
    sink: &mut S,
    desc: &'static VmStateDescription,
    index: usize,
    count: Option<i64>,
    write: F,
) -> Result<()>
where
    B: BufMut,
    S: DescribeSink + ?Sized,
    F: FnOnce(&mut Writer<B>, &mut S) -> Result<()>,
{
    let recording = sink.is_recording();
    let start = w.position();
    if recording {
        begin_field(sink, desc, index, count.map(|c| c.max(0) as usize));
    }
    if let Err(e) = write(w, sink) {
        return Err(located(e, desc, index, w.position()));
    }
    if recording {
        sink.end_field(w.position() - start);
    }
    Ok(())
}

/// [`save_field`] for a field saved through its type's own encoding.
#[inline(always)]
pub fn save_value<T, B, S>(
    value: &T,
    w: &mut Writer<B>,
    sink: &mut S,
    desc: &'static VmStateDescription,
    index: usize,
) -> Result<()>
where
    T: VmStateField,
    B: BufMut,
    S: DescribeSink + ?Sized,
{
    save_field(w, sink, desc, index, None, |w, sink| {
        value.save_field_with(w, sink)
    })
}

#[cold]
fn located(e: Error, desc: &'static VmStateDescription, index: usize, at: u64) -> Error {
    e.in_field(desc.fields.get(index).map_or("?", |f| f.name), at)
}

fn begin_field<S: DescribeSink + ?Sized>(
    sink: &mut S,
    desc: &'static VmStateDescription,
    index: usize,
    count: Option<usize>,
) {
    let Some(field) = desc.fields.get(index) else {
        return;
    };
    // QEMU names repeated field names `name[k]`, k counting the vmsd's fields of
    // that name (written or not).
    let same = desc.fields.iter().filter(|f| f.name == field.name).count();
    let duplicate_index = (same > 1).then(|| {
        desc.fields[..index]
            .iter()
            .filter(|f| f.name == field.name)
            .count()
    });
    let elements = count.or(match field.layout {
        FieldLayout::Array { len } => Some(len),
        _ => None,
    });
    sink.begin_field(FieldStart {
        field,
        duplicate_index,
        elements,
    });
}
