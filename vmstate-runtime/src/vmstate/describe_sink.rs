//! Recording the layout of a body while it is saved: which fields were written and
//! how many bytes each took. This is what QEMU's vmdesc trailer (and its
//! `analyze-migration.py`) is made from; sizes of variable fields are only known
//! while saving, so the generated `save_described` reports them here.

use super::VmStateDescription;

/// Receives a body's structure during [`VmState::save_described`](super::VmState::save_described).
///
/// Calls nest: `begin_vmsd` … `end_vmsd` around every body (the top level, a nested
/// struct inside `begin_field`/`end_field`, or a subsection directly inside its
/// parent's body), and `begin_field` … `end_field` around every field written.
pub trait DescribeSink {
    /// A body of `desc` starts (written at its current version).
    fn begin_vmsd(&mut self, desc: &'static VmStateDescription);
    /// The body ends.
    fn end_vmsd(&mut self);
    /// A field starts: its name, QEMU info name and (for arrays) element count.
    fn begin_field(&mut self, name: &'static str, info: &'static str, array_len: Option<usize>);
    /// The field ended after `size` bytes.
    fn end_field(&mut self, size: u64);
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
    /// QEMU info name.
    pub info: &'static str,
    /// Element count for arrays.
    pub array_len: Option<usize>,
    /// Bytes written (including nested subsections).
    pub size: u64,
    /// The nested body for struct fields.
    pub nested: Option<Box<DescribedVmsd>>,
}

enum Frame {
    Vmsd(DescribedVmsd),
    Field(DescribedField),
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
            Some(Frame::Vmsd(parent)) => parent.subsections.push(v),
            None => self.done = Some(v),
        }
    }

    fn begin_field(&mut self, name: &'static str, info: &'static str, array_len: Option<usize>) {
        self.stack.push(Frame::Field(DescribedField {
            name,
            info,
            array_len,
            size: 0,
            nested: None,
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
}

/// A sink that records nothing (for `save_described` callers that only want bytes).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDescribe;

impl DescribeSink for NoDescribe {
    fn begin_vmsd(&mut self, _: &'static VmStateDescription) {}
    fn end_vmsd(&mut self) {}
    fn begin_field(&mut self, _: &'static str, _: &'static str, _: Option<usize>) {}
    fn end_field(&mut self, _: u64) {}
}
