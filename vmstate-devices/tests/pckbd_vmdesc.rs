//! The vmdesc trailer for the keyboard controller's sections is byte-identical
//! to what QEMU 7.2 wrote: names (incl. QEMU member paths like `queue.rptr`),
//! info types, sizes, nested structs and the subsections present in each state.

mod common;

use common::fixtures::{fixture, STREAMS};
use common::i8042::{i8042_bodies, load_sections};
use vmstate_devices::pckbd::I8042;
use vmstate_runtime::savevm::device_json;
use vmstate_runtime::vmstate::DescribeRecorder;
use vmstate_runtime::wire::Writer;
use vmstate_runtime::VmState;

/// The vmdesc JSON of a stream (record 0x06 after EOF, found from the end the
/// way analyze-migration.py does).
fn vmdesc(stream: &[u8]) -> &str {
    let start = stream
        .windows(14)
        .rposition(|w| w == b"{\"page_size\": ")
        .expect("vmdesc present");
    assert_eq!(stream[start - 5], 0x06);
    let len = u32::from_be_bytes(stream[start - 4..start].try_into().unwrap()) as usize;
    std::str::from_utf8(&stream[start..start + len]).unwrap()
}

/// The JSON object of one device in a vmdesc, as QEMU wrote it.
fn device<'a>(vmdesc: &'a str, idstr: &str) -> &'a str {
    let key = format!("{{\"name\": \"{idstr}\", \"instance_id\": 0,");
    let start = vmdesc.find(&key).expect("device listed");
    let mut depth = 0;
    for (i, c) in vmdesc[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &vmdesc[start..=start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated device object");
}

fn ours<T: VmState>(dev: &T, idstr: &str) -> String {
    let mut rec = DescribeRecorder::new();
    let mut w = Writer::new(Vec::new());
    dev.save_described(&mut w, &mut rec).unwrap();
    let len = w.into_inner().len() as u64;
    device_json(idstr, 0, rec.finish().as_ref(), len)
}

#[test]
fn vmdesc_device_entries_match_qemu_byte_for_byte() {
    for name in STREAMS {
        let stream = fixture(name);
        let desc = vmdesc(&stream);
        let mut dev = I8042::default();
        load_sections(&mut dev, &i8042_bodies(&stream)).unwrap();
        assert_eq!(
            ours(dev.keyboard(), "ps2kbd"),
            device(desc, "ps2kbd"),
            "{name}"
        );
        assert_eq!(
            ours(dev.mouse(), "ps2mouse"),
            device(desc, "ps2mouse"),
            "{name}"
        );
        assert_eq!(ours(&dev, "pckbd"), device(desc, "pckbd"), "{name}");
    }
}
