//! validate (VMSTATE_VALIDATE)

use super::*;

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 1)]
struct HpetLike {
    config: u64,
    #[vmstate(validate = HpetLike::num_timers_in_range)]
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [u32; 32],
    #[vmstate(validate = HpetLike::always)]
    check: (),
}

impl HpetLike {
    fn num_timers_in_range(&self, _version_id: u32) -> bool {
        (3..=32).contains(&self.num_timers)
    }
    fn always(&self, _version_id: u32) -> bool {
        true
    }
}

#[test]
fn validate_writes_nothing_and_runs_after_its_field() {
    let mut v = HpetLike {
        config: 1,
        num_timers: 3,
        ..Default::default()
    };
    v.timers[..3].copy_from_slice(&[10, 11, 12]);
    let wire = cat(&[
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[3],
        &[0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0, 12],
    ]);
    assert_wire(&v, &wire, 1);
}
