//! Nested structs (VMS_STRUCT)

use super::arrays::Triv;
use super::*;

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner/extra", version = 1)]
struct InnerExtra {
    e: u16,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "inner", version = 3, minimum_version = 3)]
struct Inner {
    x: u8,
    /// Newer than any outer stream version used below: still loaded, because a
    /// nested struct is loaded at its own current version.
    #[vmstate(since = 3)]
    y: u16,
    #[vmstate(subsection(needed = Inner::extra_needed))]
    extra: InnerExtra,
}

impl Inner {
    fn extra_needed(&self) -> bool {
        self.extra.e != 0
    }
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "outer", version = 2, minimum_version = 1)]
pub(super) struct Outer {
    before: u8,
    inner: Inner,
    after: u32,
    #[vmstate(since = 2)]
    late: u8,
}

#[test]
fn nested_struct_body_inline_without_subsection() {
    let v = Outer {
        before: 0xaa,
        inner: Inner {
            x: 1,
            y: 0x0203,
            extra: InnerExtra::default(),
        },
        after: 0x0405_0607,
        late: 9,
    };
    let wire = [0xaa, 1, 2, 3, 4, 5, 6, 7, 9];
    assert_wire(&v, &wire, 2);
}

#[test]
fn nested_subsection_sits_right_after_nested_fields() {
    let v = Outer {
        before: 0xaa,
        inner: Inner {
            x: 1,
            y: 0x0203,
            extra: InnerExtra { e: 0xbeef },
        },
        after: 0x0405_0607,
        late: 9,
    };
    let wire = cat(&[
        &[0xaa, 1, 2, 3],
        &sub_header("inner/extra", 1),
        &[0xbe, 0xef],
        &[4, 5, 6, 7, 9],
    ]);
    assert_wire(&v, &wire, 2);
}

#[test]
fn nested_struct_loads_at_its_own_version() {
    // An outer v1 stream: `late` is absent, but the inner body is still loaded at
    // inner's version 3 (its `since = 3` field `y` is present, and inner's
    // minimum version 3 does not reject the outer version 1).
    let wire = [0xaa, 1, 2, 3, 4, 5, 6, 7];
    let v: Outer = from_bytes(&wire, 1).unwrap();
    assert_eq!(
        v,
        Outer {
            before: 0xaa,
            inner: Inner {
                x: 1,
                y: 0x0203,
                extra: InnerExtra::default()
            },
            after: 0x0405_0607,
            late: 0,
        }
    );
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "boxed", version = 1)]
pub(super) struct Boxed {
    n: Box<u32>,
    s: Box<Triv>,
    arr: Box<[u16; 2]>,
}

#[test]
fn box_is_transparent() {
    // VMS_POINTER / STRUCT_POINTER: nothing for the pointer itself.
    let v = Boxed {
        n: Box::new(0x0102_0304),
        s: Box::new(Triv { i: -1 }),
        arr: Box::new([5, 6]),
    };
    let wire = [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0, 5, 0, 6];
    assert_wire(&v, &wire, 1);
}
