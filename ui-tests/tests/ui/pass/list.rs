//! `list` (QEMU's QTAILQ/QLIST): each element 0x01 + body, then 0x00.
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, VmState};

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "virtio-scsi/req", version = 1)]
struct Req {
    tag: u32,
    lun: u8,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "virtio-scsi", version = 1)]
struct VirtioScsi {
    events_dropped: bool,
    #[vmstate(list, max = 2)]
    reqs: Vec<Req>,
}

fn main() {
    let dev = VirtioScsi {
        events_dropped: true,
        reqs: vec![Req { tag: 1, lun: 0 }, Req { tag: 2, lun: 3 }],
    };
    let bytes = to_bytes(&dev).unwrap();
    assert_eq!(bytes, [1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 2, 3, 0]);
    assert_eq!(from_bytes::<VirtioScsi>(&bytes, 1).unwrap(), dev);

    let too_long = VirtioScsi {
        reqs: vec![Req::default(); 3],
        ..Default::default()
    };
    let bytes = to_bytes(&too_long).unwrap();
    let e = from_bytes::<VirtioScsi>(&bytes, 1).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::ListTooLong { max: 2 }));
}
