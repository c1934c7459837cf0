//! validate (and the CVE cases it guards)

use super::*;

/// CVE-2013-4527 (HPET): `num_timers` (u8) is the VARRAY count over a 32-entry array;
/// QEMU guards it with VMSTATE_VALIDATE("num_timers in range").
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 2)]
struct Hpet {
    config: u64,
    #[vmstate(validate = Hpet::num_timers_in_range)]
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [HpetTimer; 32],
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[vmstate(name = "hpet_timer", version = 1)]
struct HpetTimer {
    cmp: u64,
}

impl Hpet {
    fn num_timers_in_range(&self, _version_id: u32) -> bool {
        (3..=32).contains(&self.num_timers)
    }
}

fn hpet_bytes(num_timers: u8, present: usize) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    b.push(num_timers);
    b.extend(std::iter::repeat_n(0, 8 * present));
    b
}

#[test]
fn cve_2013_4527_hpet_num_timers() {
    assert!(from_bytes::<Hpet>(&hpet_bytes(3, 3), 2).is_ok());
    assert!(from_bytes::<Hpet>(&hpet_bytes(32, 32), 2).is_ok());
    for bad in [0u8, 2, 33, 255] {
        let e = load_err::<Hpet>(&hpet_bytes(bad, 32), 2, "hpet.num_timers", 9);
        assert_kind!(
            e,
            ErrorKind::ValidationFailed {
                check: "Hpet::num_timers_in_range"
            }
        );
        assert!(
            e.to_string()
                .contains("validation 'Hpet::num_timers_in_range' failed"),
            "{e}"
        );
    }
}

/// The same array without the VALIDATE: the fixed array's length still bounds it.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "hpet", version = 2)]
struct HpetNoValidate {
    config: u64,
    num_timers: u8,
    #[vmstate(varray(len = num_timers))]
    timers: [HpetTimer; 32],
}

#[test]
fn varray_over_fixed_array_is_bounded_without_validate() {
    let e = load_err::<HpetNoValidate>(&hpet_bytes(255, 40), 2, "hpet.timers", 9);
    assert_kind!(
        e,
        ErrorKind::CountOutOfRange {
            count: 255,
            max: 32
        }
    );
}

/// Validate with a unit field placed after several fields, checking a relation
/// (CVE-2013-4529, PCIe AER: "log_num <= log_max").
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "aer_log", version = 1)]
struct AerLog {
    log_num: u16,
    log_max: u16,
    #[vmstate(validate = AerLog::log_num_fits)]
    check: (),
    #[vmstate(varray(len = log_num), max = 128)]
    log: Vec<u32>,
}

impl AerLog {
    fn log_num_fits(&self, _version_id: u32) -> bool {
        self.log_num <= self.log_max
    }
}

#[test]
fn cve_2013_4529_aer_log_num() {
    let ok = cat(&[&[0, 1, 0, 8], &[0, 0, 0, 1]]);
    assert_eq!(from_bytes::<AerLog>(&ok, 1).unwrap().log, [1]);
    let e = load_err::<AerLog>(&[0, 9, 0, 8], 1, "aer_log.check", 4);
    assert_kind!(
        e,
        ErrorKind::ValidationFailed {
            check: "AerLog::log_num_fits"
        }
    );
}

/// CVE-2013-4533 (PXA2xx SSP: rx_start < 16) and CVE-2013-4540 (Zaurus SCOOP:
/// prev_level is 16 bit) — both VMSTATE_VALIDATE in QEMU.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pxa2xx-ssp", version = 1)]
struct Pxa2xxSsp {
    rx_level: u32,
    #[vmstate(validate = Pxa2xxSsp::fifo_is_16_bytes)]
    rx_start: u32,
    rx_fifo: [u8; 16],
    #[vmstate(validate = Pxa2xxSsp::irq_levels_are_16_bit)]
    prev_level: u32,
}

impl Pxa2xxSsp {
    fn fifo_is_16_bytes(&self, _: u32) -> bool {
        self.rx_start < 16 && self.rx_level <= 16
    }
    fn irq_levels_are_16_bit(&self, _: u32) -> bool {
        self.prev_level < 0x10000
    }
}

#[test]
fn cve_2013_4533_and_4540_validate() {
    let good = cat(&[&[0, 0, 0, 4], &[0, 0, 0, 15], &[0; 16], &[0, 0, 0xff, 0xff]]);
    assert!(from_bytes::<Pxa2xxSsp>(&good, 1).is_ok());
    let mut b = good.clone();
    b[7] = 16;
    let e = load_err::<Pxa2xxSsp>(&b, 1, "pxa2xx-ssp.rx_start", 8);
    assert_kind!(e, ErrorKind::ValidationFailed { .. });
    let mut b = good.clone();
    b[24..28].copy_from_slice(&0x10000u32.to_be_bytes());
    let e = load_err::<Pxa2xxSsp>(&b, 1, "pxa2xx-ssp.prev_level", 28);
    assert_kind!(
        e,
        ErrorKind::ValidationFailed {
            check: "Pxa2xxSsp::irq_levels_are_16_bit"
        }
    );
}
