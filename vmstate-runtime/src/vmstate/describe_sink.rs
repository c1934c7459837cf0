//! Recording the layout of a body while it is saved: which fields were written and
//! how many bytes each took. This is what QEMU's vmdesc trailer (and its
//! `analyze-migration.py`) is made from; sizes of variable fields and element
//! counts of variable arrays are only known while saving, so the generated
//! `save_described` reports them here.

use super::{FieldDescription, VmStateDescription};

/// What a sink is told when a field starts.
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

/// Receives a body's structure during [`VmState::save_described`](super::VmState::save_described).
///
/// Calls nest: `begin_vmsd` … `end_vmsd` around every body (the top level, a nested
/// struct inside a field or array element, or a subsection directly inside its
/// parent's body), `begin_field` … `end_field` around every field written, and
/// `begin_element` … `end_element` around each element of an array of structs.
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
}

/// One described body: what QEMU's vmdesc lists for a vmsd.
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
    pub fn compressible(&self) -> bool {
        !self.has_test && self.ty.nested.is_none_or(VmStateDescription::compressible)
    }
}

impl VmStateDescription {
    /// Whether a body of this description always has the same shape: no
    /// subsections and only compressible fields.
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
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded top-level body (`None` if nothing complete was recorded).
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

/// A sink that records nothing (for `save_described` callers that only want bytes).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDescribe;

impl DescribeSink for NoDescribe {
    fn begin_vmsd(&mut self, _: &'static VmStateDescription) {}
    fn end_vmsd(&mut self) {}
    fn begin_field(&mut self, _: FieldStart) {}
    fn end_field(&mut self, _: u64) {}
}
