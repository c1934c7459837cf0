//! Counted arrays and buffers: `varray` on a Vec and on an array, `vbuffer` on a
//! Vec and on an array, `max`, `buffer`, `bitmap` and `unused`.
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, FieldLayout, VmState};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(name = "usb-host", version = 1)]
struct UsbHost {
    nr_eps: u8,
    /// A Vec is always bounded by `max`.
    #[vmstate(varray(len = nr_eps), max = 32)]
    ep_status: Vec<u16>,
    nr_ports: i32,
    /// On an array the bound defaults to its length.
    #[vmstate(varray(len = nr_ports))]
    port_status: [u32; 4],
    setup_len: u16,
    #[vmstate(vbuffer(len = setup_len), max = 64)]
    setup_buf: Vec<u8>,
    data_len: u32,
    #[vmstate(vbuffer(len = data_len), max = 6)]
    data_buf: [u8; 8],
    #[vmstate(buffer)]
    descriptor: [u8; 4],
    #[vmstate(unused = 3)]
    _reserved: (),
    nbits: u32,
    #[vmstate(bitmap(len = nbits), max = 128)]
    dirty: Vec<u64>,
}

fn main() {
    let dev = UsbHost {
        nr_eps: 2,
        ep_status: vec![0x0102, 0x0304],
        nr_ports: 1,
        port_status: [0x11, 0, 0, 0],
        setup_len: 3,
        setup_buf: vec![0x80, 6, 1],
        data_len: 2,
        data_buf: [0xaa, 0xbb, 0, 0, 0, 0, 0, 0],
        descriptor: [0x12, 1, 0, 2],
        _reserved: (),
        nbits: 65,
        dirty: vec![1, 1 << 63],
    };
    let bytes = to_bytes(&dev).unwrap();
    #[rustfmt::skip]
    let expected = [
        2, 1, 2, 3, 4,
        0, 0, 0, 1, 0, 0, 0, 0x11,
        0, 3, 0x80, 6, 1,
        0, 0, 0, 2, 0xaa, 0xbb,
        0x12, 1, 0, 2,
        0, 0, 0,
        0, 0, 0, 65, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(bytes, expected);
    assert_eq!(from_bytes::<UsbHost>(&bytes, 1).unwrap(), dev);

    // A count above `max` is refused before anything is allocated.
    let mut bad = bytes.clone();
    bad[0] = 33;
    let e = from_bytes::<UsbHost>(&bad, 1).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::CountOutOfRange { count: 33, max: 32 }
    ));

    let d = UsbHost::DESCRIPTION;
    assert_eq!(
        d.field("ep_status").unwrap().layout,
        FieldLayout::VarArray {
            count_field: "nr_eps",
            max: 32
        }
    );
    assert_eq!(
        d.field("port_status").unwrap().layout,
        FieldLayout::VarArray {
            count_field: "nr_ports",
            max: 4
        }
    );
    assert_eq!(d.field("descriptor").unwrap().ty.info, "buffer");
    assert_eq!(
        d.field("_reserved").unwrap().layout,
        FieldLayout::Unused { size: 3 }
    );
    assert_eq!(
        d.field("dirty").unwrap().layout,
        FieldLayout::Bitmap {
            bits_field: "nbits",
            max_bits: 128
        }
    );
}
