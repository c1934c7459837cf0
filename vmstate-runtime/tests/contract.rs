//! The derive syntax promised by the DSL issue, compiled and exercised end to end.

mod common;
use common::kinds::assert_kind;

use vmstate_runtime::{from_bytes, to_bytes, Error, ErrorKind, VmState};

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd_outport", version = 1)]
struct Outport {
    outport: u8,
}

#[derive(Default, Debug, PartialEq, Clone)]
struct IrqLine {
    level: bool,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "pckbd", version = 3, minimum_version = 3,
          priority = Default,
          pre_save = Self::pre_save, post_load = Self::post_load,
          pre_load = Self::pre_load, post_save = Self::post_save)]
struct Kbd {
    write_cmd: u8,
    status: u8,
    #[vmstate(since = 3)]
    mode: u8,
    #[vmstate(test = Self::has_extra)]
    extra: u32,
    queue_len: u32,
    #[vmstate(varray(len = queue_len), max = 256)]
    queue: Vec<u8>,
    #[vmstate(subsection(needed = Self::outport_needed))]
    outport: Outport,
    #[vmstate(skip)]
    irq: IrqLine,
}

impl Kbd {
    fn pre_save(&self) -> Result<(), Error> {
        Ok(())
    }
    fn post_save(&self) -> Result<(), Error> {
        Ok(())
    }
    fn pre_load(&mut self) -> Result<(), Error> {
        self.outport.outport = 0xcf;
        Ok(())
    }
    fn post_load(&mut self, _version_id: u32) -> Result<(), String> {
        if self.status == 0xff {
            return Err("status 0xff is impossible".to_string());
        }
        Ok(())
    }
    fn has_extra(&self, _version_id: u32) -> bool {
        self.write_cmd == 0xd4
    }
    fn outport_needed(&self) -> bool {
        self.outport.outport != 0xcf
    }
}

#[test]
fn issue_example_roundtrips_with_exact_bytes() {
    let k = Kbd {
        write_cmd: 0xd4,
        status: 0x1c,
        mode: 0x47,
        extra: 0x0102_0304,
        queue_len: 2,
        queue: vec![0xfa, 0xaa],
        outport: Outport { outport: 0xcd },
        irq: IrqLine { level: true },
    };
    let bytes = to_bytes(&k).unwrap();
    let mut expected = vec![0xd4, 0x1c, 0x47, 1, 2, 3, 4, 0, 0, 0, 2, 0xfa, 0xaa];
    expected.extend_from_slice(&[0x05, 13]);
    expected.extend_from_slice(b"pckbd_outport");
    expected.extend_from_slice(&[0, 0, 0, 1, 0xcd]);
    assert_eq!(bytes, expected);
    let back: Kbd = from_bytes(&bytes, 3).unwrap();
    assert_eq!(
        back,
        Kbd {
            irq: IrqLine::default(),
            ..k
        }
    );
}

#[test]
fn post_load_error_carries_hook_and_path() {
    let bytes = [0u8, 0xff, 0, 0, 0, 0, 0];
    let e = from_bytes::<Kbd>(&bytes, 3).unwrap_err();
    assert_kind!(
        e,
        ErrorKind::Hook {
            hook: "post_load",
            ..
        }
    );
    assert_eq!(e.path_string(), "pckbd");
    assert!(e.to_string().contains("status 0xff is impossible"), "{e}");
}

#[test]
fn too_old_version_is_rejected() {
    let e = from_bytes::<Kbd>(&[0, 0, 0, 0, 0, 0], 2).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::VersionTooOld { version: 2, min: 3 }
    ));
}

/// Feeds the reader one byte per refill, as a slow socket would.
struct Trickle {
    data: Vec<u8>,
    at: usize,
}

impl vmstate_runtime::wire::Refill<bytes::BytesMut> for Trickle {
    fn refill(&mut self, buf: &mut bytes::BytesMut, _min: usize) -> std::io::Result<usize> {
        if self.at == self.data.len() {
            return Ok(0);
        }
        buf.extend_from_slice(&self.data[self.at..self.at + 1]);
        self.at += 1;
        Ok(1)
    }
}

#[test]
fn streaming_reader_refills_through_fields_runs_and_subsections() {
    let k = Kbd {
        write_cmd: 0xd4,
        status: 0x1c,
        mode: 0x47,
        extra: 9,
        queue_len: 3,
        queue: vec![1, 2, 3],
        outport: Outport { outport: 0x01 },
        irq: IrqLine::default(),
    };
    let mut bytes = to_bytes(&k).unwrap();
    bytes.push(0x7e); // what follows a body in a stream (a section footer)
    let mut r = vmstate_runtime::wire::Reader::with_refill(
        bytes::BytesMut::new(),
        100,
        Box::new(Trickle {
            data: bytes.clone(),
            at: 0,
        }),
    );
    let mut back = Kbd::default();
    back.load(&mut r, 3).unwrap();
    assert_eq!(back, k);
    assert_eq!(r.position(), 100 + bytes.len() as u64 - 1);
    assert_eq!(r.read_u8().unwrap(), 0x7e);
    // At the end of the source, a read fails with the stream offset.
    let e = r.read_u32().unwrap_err();
    assert_eq!(e.offset(), Some(100 + bytes.len() as u64));
}
