//! More CVE-style cases from qemu-wire.md §9

use super::*;

/// CVE-2013-4148 / CVE-2013-4149 (virtio-net MAC table): `in_use` counts 6-byte
/// entries of a 64-entry table. Here the count is bounded (`max = 64`); a signed
/// count (the original bug) must not turn a huge value into an accepted one.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio-net", version = 11)]
struct MacTable {
    in_use: u32,
    #[vmstate(vbuffer(len = in_use), max = 64)]
    macs: Vec<u8>,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio-net", version = 11)]
struct MacTableSigned {
    in_use: i32,
    #[vmstate(varray(len = in_use), max = 64)]
    macs: Vec<[u8; 6]>,
}

#[test]
fn cve_2013_4148_4149_mac_table_in_use() {
    for in_use in [65u32, 1000, 0x8100_0000, 0xffff_ffff] {
        let mut b = in_use.to_be_bytes().to_vec();
        b.extend(std::iter::repeat_n(0, 6 * 65)); // more than enough "payload"
        let e = load_err::<MacTable>(&b, 11, "virtio-net.macs", 4);
        assert_kind!(e, ErrorKind::CountOutOfRange { count, max: 64 } if *count == i64::from(in_use));
        let e = load_err::<MacTableSigned>(&b, 11, "virtio-net.macs", 4);
        assert_kind!(e, ErrorKind::CountOutOfRange { count, max: 64 } if *count == i64::from(in_use as i32));
    }
    // 64 entries of 6 bytes load.
    let mut b = 64i32.to_be_bytes().to_vec();
    b.extend(std::iter::repeat_n(0xab, 6 * 64));
    assert_eq!(from_bytes::<MacTableSigned>(&b, 11).unwrap().macs.len(), 64);
}

/// CVE-2013-4150 / CVE-2013-4151 / CVE-2013-6399 (virtio): queue counts and
/// indices from the stream, checked in post_load (QEMU: -EINVAL).
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio", version = 1, post_load = Virtio::post_load)]
struct Virtio {
    #[vmstate(equal)]
    max_queue_pairs: u16,
    curr_queue_pairs: u16,
    queue_sel: u16,
    num: u32,
    #[vmstate(varray(len = num), max = 1024)]
    vring_num: Vec<u16>,
}

#[derive(Debug)]
struct VirtioError(&'static str);

impl fmt::Display for VirtioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtio: {}", self.0)
    }
}

impl std::error::Error for VirtioError {}

impl Virtio {
    fn post_load(&mut self, _version_id: u32) -> Result<(), VirtioError> {
        if self.curr_queue_pairs > self.max_queue_pairs {
            return Err(VirtioError("curr_queue_pairs above max_queue_pairs"));
        }
        if self.queue_sel >= 1024 {
            return Err(VirtioError("queue_sel out of range"));
        }
        Ok(())
    }
}

fn virtio_bytes(max: u16, curr: u16, sel: u16, num: u32) -> Vec<u8> {
    let mut b = cat(&[
        &max.to_be_bytes(),
        &curr.to_be_bytes(),
        &sel.to_be_bytes(),
        &num.to_be_bytes(),
    ]);
    b.extend(std::iter::repeat_n(0, 2 * num.min(1025) as usize));
    b
}

#[test]
fn cve_2013_4150_4151_6399_virtio_counts() {
    assert!(from_bytes::<Virtio>(&virtio_bytes(0, 0, 0, 1024), 1).is_ok());
    // max_queue_pairs is "uint16 equal" against the destination (0 here).
    let e = load_err::<Virtio>(&virtio_bytes(4, 0, 0, 0), 1, "virtio.max_queue_pairs", 0);
    assert_kind!(
        e,
        ErrorKind::NotEqual {
            expected: 0,
            found: 4
        }
    );
    // curr_queue_pairs = max + 1.
    let b = virtio_bytes(0, 1, 0, 0);
    let e = load_err::<Virtio>(&b, 1, "virtio", b.len() as u64);
    let ErrorKind::Hook { hook, source } = e.kind() else {
        panic!("{e}")
    };
    assert_eq!(*hook, "post_load");
    assert_eq!(
        source.downcast_ref::<VirtioError>().unwrap().0,
        "curr_queue_pairs above max_queue_pairs"
    );
    // queue_sel = 0x400 and 0xffff.
    for sel in [0x400, 0xffff] {
        let b = virtio_bytes(0, 0, sel, 0);
        let e = load_err::<Virtio>(&b, 1, "virtio", b.len() as u64);
        assert!(e.to_string().contains("queue_sel out of range"), "{e}");
    }
    // num = 1025 and 0xffffffff.
    for num in [1025u32, u32::MAX] {
        let e = load_err::<Virtio>(&virtio_bytes(0, 0, 0, num), 1, "virtio.vring_num", 10);
        assert_kind!(e, ErrorKind::CountOutOfRange { max: 1024, .. });
    }
}

/// CVE-2013-4534 (OpenPIC): nb_cpus is UINT32_EQUAL; max_irq, a plain count in 7.2,
/// must be bounded by a Rust port.
#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "openpic", version = 3)]
struct OpenPic {
    #[vmstate(equal)]
    nb_cpus: u32,
    max_irq: u32,
    #[vmstate(varray(len = max_irq), max = 256)]
    src: Vec<u32>,
}

impl Default for OpenPic {
    fn default() -> Self {
        OpenPic {
            nb_cpus: 2,
            max_irq: 0,
            src: Vec::new(),
        }
    }
}

#[test]
fn cve_2013_4534_openpic() {
    load_errs::<OpenPic>(
        3,
        &[
            (
                &[0, 0, 0, 3, 0, 0, 0, 0],
                "openpic.nb_cpus",
                0,
                kind! { ErrorKind::NotEqual { expected: 2, found: 3 } },
            ),
            (
                &[0, 0, 0, 2, 0, 0, 1, 1],
                "openpic.src",
                8,
                kind! { ErrorKind::CountOutOfRange { count: 257, max: 256 } },
            ),
        ],
    );
}

/// CVE-2013-4530 (PL022): FIFO heads index 8-entry FIFOs; checked in post_load.
#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "pl022_ssp", version = 1, post_load = Pl022::post_load)]
struct Pl022 {
    tx_fifo_head: i32,
    rx_fifo_head: i32,
    tx_fifo: [u16; 8],
}

impl Pl022 {
    fn post_load(&mut self, _: u32) -> Result<(), &'static str> {
        if !(0..8).contains(&self.tx_fifo_head) || !(0..8).contains(&self.rx_fifo_head) {
            return Err("fifo head out of range");
        }
        Ok(())
    }
}

#[test]
fn cve_2013_4530_pl022_heads() {
    for (tx, rx) in [(8, 0), (-1, 0), (0, 8), (0, i32::MIN)] {
        let b = cat(&[&i32::to_be_bytes(tx), &i32::to_be_bytes(rx), &[0; 16]]);
        let e = load_err::<Pl022>(&b, 1, "pl022_ssp", 24);
        assert_kind!(
            e,
            ErrorKind::Hook {
                hook: "post_load",
                ..
            }
        );
        assert!(e.to_string().contains("fifo head out of range"), "{e}");
    }
}

/// CVE-2017-16845 (PS/2 queue): rptr/count are sanitised in post_load, so hostile
/// values load but can never index outside the ring.
#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "PS2 Common State", version = 3, minimum_version = 2, post_load = Ps2Queue::post_load)]
struct Ps2Queue {
    write_cmd: i32,
    rptr: i32,
    wptr: i32,
    count: i32,
    data: [u8; 256],
}

impl Default for Ps2Queue {
    fn default() -> Self {
        Ps2Queue {
            write_cmd: 0,
            rptr: 0,
            wptr: 0,
            count: 0,
            data: [0; 256],
        }
    }
}

impl Ps2Queue {
    fn post_load(&mut self, _: u32) -> Result<(), Error> {
        self.count = self.count.clamp(0, 16 + 8);
        self.rptr &= 0xff;
        self.wptr = (self.rptr + self.count) & 0xff;
        Ok(())
    }
}

#[test]
fn cve_2017_16845_ps2_queue_is_sanitised() {
    for (rptr, count) in [(0x7fff_ffff, -1), (-1, 1000), (i32::MIN, i32::MAX)] {
        let b = cat(&[
            &[0; 4],
            &i32::to_be_bytes(rptr),
            &[0; 4],
            &i32::to_be_bytes(count),
            &[0; 256],
        ]);
        let q: Ps2Queue = from_bytes(&b, 3).unwrap();
        assert!((0..256).contains(&q.rptr) && (0..256).contains(&q.wptr));
        assert!((0..=24).contains(&q.count));
        let _ = q.data[q.rptr as usize];
    }
}
