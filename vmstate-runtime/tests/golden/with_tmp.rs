//! with_tmp (VMSTATE_WITH_TMP) — test-vmstate.c: test_tmp_struct

use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/tmp_child")]
struct TmpChild {
    diff: i64,
    /// VMSTATE_STRUCT_POINTER(parent, ..., vmstate_tmp_back_to_parent): the parent's `f`.
    f: u64,
}

impl VmStateTmp<WithTmpTest> for TmpChild {
    fn from_parent(p: &WithTmpTest) -> Result<Self, Error> {
        Ok(TmpChild {
            diff: p.b as i64 - p.a as i64,
            f: p.f,
        })
    }
    fn into_parent(self, p: &mut WithTmpTest) -> Result<(), Error> {
        p.b = (p.a as i64 + self.diff) as u32;
        p.f = self.f;
        Ok(())
    }
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "test/with_tmp", version = 1)]
pub(super) struct WithTmpTest {
    a: u32,
    #[vmstate(skip)]
    b: u32,
    d: u64,
    #[vmstate(skip)]
    f: u64,
    #[vmstate(with_tmp)]
    tmp: WithTmp<TmpChild>,
}

#[test]
fn with_tmp_matches_qemu() {
    let v = WithTmpTest {
        a: 21,
        b: 42,
        d: 7,
        f: 8,
        tmp: WithTmp::new(),
    };
    let wire = [
        /* a */ 0x00, 0x00, 0x00, 0x15, //
        /* d */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        /* tmp->diff */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, //
        /* tmp->f */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
    ];
    assert_wire(&v, &wire, 1);
}
