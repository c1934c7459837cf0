//! Checks applied while loading: `equal`, `positive_le` and `validate` (also on a
//! `()` field, QEMU's VMSTATE_VALIDATE on its own).
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, VmState};

#[derive(VmState, Debug, PartialEq)]
#[vmstate(name = "virtio-net", version = 1)]
struct VirtioNet {
    #[vmstate(equal)]
    max_queues: u16,
    #[vmstate(positive_le)]
    curr_queues: i32,
    #[vmstate(validate = mac_ok)]
    mac: [u8; 6],
    #[vmstate(validate = queues_ok)]
    _check: (),
}

impl Default for VirtioNet {
    fn default() -> Self {
        VirtioNet {
            max_queues: 4,
            curr_queues: 4,
            mac: [0; 6],
            _check: (),
        }
    }
}

fn mac_ok(s: &VirtioNet, _version_id: u32) -> bool {
    s.mac[0] & 1 == 0 // not a multicast address
}

fn queues_ok(s: &VirtioNet, _version_id: u32) -> bool {
    s.curr_queues >= 1
}

fn main() {
    let dev = VirtioNet {
        curr_queues: 2,
        mac: [0x52, 0x54, 0, 0, 0, 1],
        ..Default::default()
    };
    let bytes = to_bytes(&dev).unwrap();
    assert_eq!(bytes, [0, 4, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1]);
    assert_eq!(from_bytes::<VirtioNet>(&bytes, 1).unwrap(), dev);

    // `equal`: the stream must carry our own value.
    let mut bad = bytes.clone();
    bad[1] = 8;
    let e = from_bytes::<VirtioNet>(&bad, 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::NotEqual {
            expected: 4,
            found: 8
        }
    ));

    // `positive_le`: 0 <= incoming <= ours.
    let mut bad = bytes.clone();
    bad[5] = 5;
    let e = from_bytes::<VirtioNet>(&bad, 1).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotPositiveLe { .. }));

    // `validate` on the field and on the `()` marker.
    let mut bad = bytes.clone();
    bad[6] = 0x01;
    let e = from_bytes::<VirtioNet>(&bad, 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::ValidationFailed { check: "mac_ok" }
    ));
    let mut bad = bytes.clone();
    bad[5] = 0;
    let e = from_bytes::<VirtioNet>(&bad, 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::ValidationFailed { check: "queues_ok" }
    ));

    let d = VirtioNet::DESCRIPTION;
    assert_eq!(d.field("max_queues").unwrap().ty.info, "uint16 equal");
    assert_eq!(d.field("curr_queues").unwrap().ty.info, "int32 le");
}
