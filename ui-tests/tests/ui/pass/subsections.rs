//! Subsections: `subsection` (always sent), `subsection()` and
//! `subsection(needed = path)`; loading accepts any subset in any order.
use vmstate_runtime::{from_bytes, to_bytes, VmState};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "e1000/mit_state", version = 1)]
struct MitState {
    rdtr: u32,
    radv: u32,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "e1000/full_mac_state")]
struct FullMac {
    mac: [u8; 6],
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "e1000/tx_tso_state")]
struct TxTso {
    tso_frames: u16,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "e1000", version = 2)]
struct E1000 {
    rxbuf_size: u32,
    #[vmstate(subsection(needed = mit_needed))]
    mit: MitState,
    #[vmstate(subsection)]
    full_mac: FullMac,
    #[vmstate(subsection())]
    tso: TxTso,
}

fn mit_needed(s: &E1000) -> bool {
    s.mit.rdtr != 0
}

fn header(name: &str, version: u32) -> Vec<u8> {
    let mut h = vec![0x05, name.len() as u8];
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h
}

fn main() {
    let mut dev = E1000 {
        rxbuf_size: 2048,
        full_mac: FullMac {
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        },
        tso: TxTso { tso_frames: 9 },
        ..Default::default()
    };
    // `mit` is not needed: only the two unconditional subsections follow the body.
    let mut expected = vec![0, 0, 8, 0];
    expected.extend(header("e1000/full_mac_state", 0));
    expected.extend([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    expected.extend(header("e1000/tx_tso_state", 0));
    expected.extend([0, 9]);
    let bytes = to_bytes(&dev).unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(from_bytes::<E1000>(&bytes, 2).unwrap(), dev);

    dev.mit = MitState { rdtr: 1, radv: 2 };
    let bytes = to_bytes(&dev).unwrap();
    assert_eq!(&bytes[4..6], &[0x05, 15]);
    assert_eq!(from_bytes::<E1000>(&bytes, 2).unwrap(), dev);

    // Any subset, any order.
    let mut reordered = vec![0, 0, 8, 0];
    reordered.extend(header("e1000/tx_tso_state", 0));
    reordered.extend([0, 3]);
    let loaded = from_bytes::<E1000>(&reordered, 2).unwrap();
    assert_eq!(loaded.tso.tso_frames, 3);
    assert_eq!(loaded.full_mac, FullMac::default());

    let subs = E1000::DESCRIPTION.subsections;
    assert_eq!(subs.len(), 3);
    assert_eq!(subs[0].field, "mit");
    assert_eq!(subs[0].description.name, "e1000/mit_state");
}
