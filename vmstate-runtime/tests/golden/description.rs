//! The static description

use super::arrays::{StructArray, Triv};
use super::enums::{Enums, Mode16};
use super::field_tests::Skipping;
use super::hooks::HookSub;
use super::lists::QElem;
use super::nested::{Boxed, Outer};
use super::pointer_arrays::ArrPtr;
use super::primitives::{Empty, SimplePrimitive, WIRE_SIMPLE_PRIMITIVE};
use super::special_fields::Misc;
use super::subsections::Pckbd;
use super::varrays::{VBuffers, VarFixed};
use super::versions::Versioned;
use super::with_tmp::WithTmpTest;
use super::*;

#[derive(VmState, Default)]
#[vmstate(name = "desc/sub", version = 4, minimum_version = 2)]
struct DescSub {
    s: u32,
}

/// Only its description is inspected.
#[allow(dead_code)]
#[derive(VmState, Default)]
#[vmstate(
    name = "desc",
    version = 3,
    minimum_version = 2,
    priority = Iommu,
    pre_save = Desc::hook,
    post_load = Desc::post_load
)]
struct Desc {
    a: u8,
    #[vmstate(since = 2)]
    b: i32,
    #[vmstate(equal)]
    eq8: u8,
    #[vmstate(equal)]
    eq16: u16,
    #[vmstate(equal)]
    eq32: u32,
    #[vmstate(equal)]
    eqi32: i32,
    #[vmstate(equal)]
    eq64: u64,
    #[vmstate(positive_le)]
    le: i32,
    #[vmstate(timer)]
    t: Option<u64>,
    #[vmstate(buffer)]
    buf: [u8; 6],
    arr: [u16; 4],
    grid: [[u8; 3]; 2],
    n: u32,
    #[vmstate(varray(len = n), max = 16)]
    v: Vec<u32>,
    #[vmstate(vbuffer(len = n), max = 64)]
    vb: Vec<u8>,
    nbits: i32,
    #[vmstate(bitmap(len = nbits), max = 128)]
    bm: Vec<u64>,
    #[vmstate(list, max = 4)]
    l: Vec<QElem>,
    #[vmstate(unused = 5)]
    pad: (),
    inner: Triv,
    nested: Outer,
    #[vmstate(with_tmp)]
    tmp: WithTmp<DescTmp>,
    #[vmstate(skip)]
    host: u64,
    #[vmstate(test = Desc::test)]
    tf: u8,
    #[vmstate(validate = Desc::check)]
    vf: bool,
    e: Mode16,
    ptrs: [Option<Box<u32>>; 2],
    boxed: Box<u64>,
    #[vmstate(subsection(needed = Desc::needed))]
    sub: DescSub,
}

#[derive(VmState, Default)]
#[vmstate(name = "desc/tmp")]
struct DescTmp {
    x: u16,
    y: u8,
}

impl VmStateTmp<Desc> for DescTmp {
    fn from_parent(_: &Desc) -> Result<Self, Error> {
        Ok(DescTmp::default())
    }
    fn into_parent(self, _: &mut Desc) -> Result<(), Error> {
        Ok(())
    }
}

impl Desc {
    fn hook(&self) -> Result<(), Error> {
        Ok(())
    }
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        Ok(())
    }
    fn test(&self, _: u32) -> bool {
        true
    }
    fn check(&self, _: u32) -> bool {
        true
    }
    fn needed(&self) -> bool {
        false
    }
}

#[test]
fn description_header() {
    let d = Desc::DESCRIPTION;
    assert_eq!(d.name, "desc");
    assert_eq!(d.version_id, 3);
    assert_eq!(d.minimum_version_id, 2);
    assert_eq!(d.priority, MigrationPriority::Iommu);
    assert!(d.hooks.pre_save && d.hooks.post_load);
    assert!(!d.hooks.post_save && !d.hooks.pre_load);
    assert_eq!(d.subsections.len(), 1);
    assert_eq!(d.subsections[0].field, "sub");
    assert_eq!(d.subsections[0].description.name, "desc/sub");
    assert_eq!(d.subsections[0].description.version_id, 4);
    assert_eq!(d.subsections[0].description.minimum_version_id, 2);
    // A subsection field is not a body field.
    assert!(d.field("sub").is_none());
    // Defaults: version 0, minimum = version, priority Default, no hooks.
    assert_eq!(Triv::DESCRIPTION.priority, MigrationPriority::Default);
    assert_eq!(Versioned::DESCRIPTION.minimum_version_id, 1);
    assert_eq!(Pckbd::DESCRIPTION.minimum_version_id, 3);
    assert_eq!(
        Pckbd::DESCRIPTION
            .subsections
            .iter()
            .map(|s| (s.field, s.description.name))
            .collect::<Vec<_>>(),
        [
            ("outport", "pckbd_outport"),
            ("extended", "pckbd/extended_state")
        ]
    );
}

#[test]
fn description_fields() {
    let d = Desc::DESCRIPTION;
    let names: Vec<_> = d.fields.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "a", "b", "eq8", "eq16", "eq32", "eqi32", "eq64", "le", "t", "buf", "arr", "grid", "n",
            "v", "vb", "nbits", "bm", "l", "pad", "inner", "nested", "tmp", "host", "tf", "vf",
            "e", "ptrs", "boxed"
        ]
    );
    // (name, info, layout, fixed wire size, since)
    let expect: &[(&str, &str, FieldLayout, Option<usize>, u32)] = &[
        ("a", "uint8", FieldLayout::Single, Some(1), 0),
        ("b", "int32", FieldLayout::Single, Some(4), 2),
        ("eq8", "uint8 equal", FieldLayout::Single, Some(1), 0),
        ("eq16", "uint16 equal", FieldLayout::Single, Some(2), 0),
        ("eq32", "uint32 equal", FieldLayout::Single, Some(4), 0),
        ("eqi32", "int32 equal", FieldLayout::Single, Some(4), 0),
        ("eq64", "int64 equal", FieldLayout::Single, Some(8), 0),
        ("le", "int32 le", FieldLayout::Single, Some(4), 0),
        ("t", "timer", FieldLayout::Single, Some(8), 0),
        ("buf", "buffer", FieldLayout::Single, Some(6), 0),
        ("arr", "uint16", FieldLayout::Array { len: 4 }, Some(8), 0),
        ("grid", "uint8", FieldLayout::Array { len: 6 }, Some(6), 0),
        ("n", "uint32", FieldLayout::Single, Some(4), 0),
        (
            "v",
            "uint32",
            FieldLayout::VarArray {
                count_field: "n",
                max: 16,
            },
            None,
            0,
        ),
        (
            "vb",
            "buffer",
            FieldLayout::VarArray {
                count_field: "n",
                max: 64,
            },
            None,
            0,
        ),
        ("nbits", "int32", FieldLayout::Single, Some(4), 0),
        (
            "bm",
            "bitmap",
            FieldLayout::Bitmap {
                bits_field: "nbits",
                max_bits: 128,
            },
            None,
            0,
        ),
        ("l", "qtailq", FieldLayout::List { max: 4 }, None, 0),
        (
            "pad",
            "unused_buffer",
            FieldLayout::Unused { size: 5 },
            Some(5),
            0,
        ),
        ("inner", "struct", FieldLayout::Single, Some(4), 0),
        // Outer has a nested subsection (through Inner): not fixed-size.
        ("nested", "struct", FieldLayout::Single, None, 0),
        ("tmp", "tmp", FieldLayout::Tmp, Some(3), 0),
        ("host", "skipped", FieldLayout::Skipped, Some(0), 0),
        ("tf", "uint8", FieldLayout::Single, Some(1), 0),
        ("vf", "bool", FieldLayout::Single, Some(1), 0),
        ("e", "uint16", FieldLayout::Single, Some(2), 0),
        // NULL pointers are one marker byte, others the element: not fixed-size.
        ("ptrs", "uint32", FieldLayout::Array { len: 2 }, None, 0),
        ("boxed", "uint64", FieldLayout::Single, Some(8), 0),
    ];
    assert_eq!(d.fields.len(), expect.len());
    for (f, (name, info, layout, size, since)) in d.fields.iter().zip(expect) {
        assert_eq!(f.name, *name);
        assert_eq!(f.ty.info, *info, "info of {name}");
        assert_eq!(f.layout, *layout, "layout of {name}");
        assert_eq!(f.fixed_wire_size(), *size, "size of {name}");
        assert_eq!(f.version_id, *since, "since of {name}");
        assert_eq!(f.is_on_wire(), *name != "host", "on wire: {name}");
        assert_eq!(f.has_test, *name == "tf", "test: {name}");
        assert_eq!(f.has_validate, *name == "vf", "validate: {name}");
    }
    // Nested descriptions are reachable.
    assert_eq!(
        d.field("inner").unwrap().ty.nested.unwrap().name,
        "test/tst"
    );
    assert_eq!(d.field("nested").unwrap().ty.nested.unwrap().name, "outer");
    assert_eq!(
        d.field("l").unwrap().ty.nested.unwrap().name,
        "test/queue-elem"
    );
    assert_eq!(d.field("tmp").unwrap().ty.nested.unwrap().name, "desc/tmp");
    assert!(d.field("a").unwrap().ty.nested.is_none());
    // Variable parts make the body variable.
    assert_eq!(d.fixed_body_size(), None);
    assert!(d.layout_table().contains("since 2"));
}

#[test]
fn description_of_varrays_and_hooks() {
    let d = VarFixed::DESCRIPTION;
    let layout = |name: &str| d.field(name).unwrap().layout;
    // Without `max`, a varray over a fixed array is bounded by the array length.
    assert_eq!(
        layout("a8"),
        FieldLayout::VarArray {
            count_field: "n8",
            max: 4
        }
    );
    assert_eq!(
        layout("a32"),
        FieldLayout::VarArray {
            count_field: "n32",
            max: 2
        }
    );
    assert_eq!(d.field("ai").unwrap().ty.info, "struct");
    assert_eq!(d.field("ai").unwrap().ty.nested.unwrap().name, "test/tst");
    assert_eq!(d.field("a8").unwrap().fixed_wire_size(), None);
    assert_eq!(
        VBuffers::DESCRIPTION.field("fixed").unwrap().layout,
        FieldLayout::VarArray {
            count_field: "size",
            max: 8
        }
    );
    let h = HookSub::DESCRIPTION.hooks;
    assert!(h.pre_save && h.post_save && h.pre_load && h.post_load);
    assert_eq!(Triv::DESCRIPTION.hooks, vmstate_runtime::Hooks::default());
}

#[test]
fn description_fixed_body_sizes() {
    assert_eq!(
        SimplePrimitive::DESCRIPTION.fixed_body_size(),
        Some(WIRE_SIMPLE_PRIMITIVE.len())
    );
    assert_eq!(Triv::DESCRIPTION.fixed_body_size(), Some(4));
    assert_eq!(StructArray::DESCRIPTION.fixed_body_size(), Some(16));
    assert_eq!(Empty::DESCRIPTION.fixed_body_size(), Some(0));
    assert_eq!(Misc::DESCRIPTION.fixed_body_size(), Some(34));
    assert_eq!(to_bytes(&Misc::default()).unwrap().len(), 34);
    // with_tmp: the temporary's fields are on the wire.
    assert_eq!(WithTmpTest::DESCRIPTION.fixed_body_size(), Some(28));
    // Tests, subsections and pointer arrays make a body variable.
    assert_eq!(Skipping::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(Pckbd::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(ArrPtr::DESCRIPTION.fixed_body_size(), None);
    assert_eq!(Boxed::DESCRIPTION.fixed_body_size(), Some(12));
    assert_eq!(Enums::DESCRIPTION.fixed_body_size(), Some(10));
}
