//! Untrusted input: hostile queue pointers are sanitised exactly as QEMU does
//! since the CVE-2017-16845 fix (and can never index outside the ring), broken
//! streams fail with errors that say what and where, and no loaded state can
//! make the devices panic.

mod common;

use common::fixtures::fixture;
use common::i8042::i8042_bodies;
use vmstate_devices::pckbd::ps2::{Axis, MouseButton};
use vmstate_devices::pckbd::{KeyCode, Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{from_bytes, to_bytes, ErrorKind, VmState};

/// A "PS2 Common State" body.
fn common_state(write_cmd: i32, rptr: i32, wptr: i32, count: i32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [write_cmd, rptr, wptr, count] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..=255u8).map(|i| i ^ 0x5a));
    b
}

/// A "ps2kbd" v3 body, with a "command_reply_queue" subsection when `cwptr` is given.
fn kbd_body(rptr: i32, wptr: i32, count: i32, cwptr: Option<i32>) -> Vec<u8> {
    let mut b = common_state(-1, rptr, wptr, count);
    for v in [1i32, 0, 2] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(cw) = cwptr {
        b.push(0x05);
        b.push(26);
        b.extend_from_slice(b"ps2kbd/command_reply_queue");
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&cw.to_be_bytes());
    }
    b
}

/// A "ps2mouse" v2 body.
fn mouse_body(rptr: i32, wptr: i32, count: i32) -> Vec<u8> {
    let mut b = common_state(-1, rptr, wptr, count);
    b.extend_from_slice(&[0x20, 2, 100, 0, 3, 0]);
    for v in [5i32, -7, 1] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.push(1);
    b
}

/// Drives a device hard: reads, commands, input. Must never panic, and the
/// queue must stay within its bounds.
fn exercise(dev: &mut I8042) {
    for i in 0..40u8 {
        let _ = dev.read_port(0x64);
        let _ = dev.read_port(0x60);
        match i % 8 {
            0 => dev.write_port(
                0x60,
                [0xf2, 0xff, 0xf0, 0x00, 0xed, 0xee][usize::from(i / 8) % 6],
            ),
            1 => dev.key_event(
                KeyCode::ALL[usize::from(i) % KeyCode::ALL.len()],
                i % 3 == 0,
            ),
            2 => {
                dev.write_port(0x64, 0xd4);
                dev.write_port(0x60, [0xf4, 0xe9, 0xeb, 0xf2, 0xff][usize::from(i / 8) % 5]);
            }
            3 => {
                dev.mouse_move(Axis::X, i32::MAX);
                dev.mouse_button(MouseButton::WheelUp, true);
                dev.mouse_sync();
            }
            4 => dev.write_port(
                0x64,
                [0x20, 0xaa, 0xd0, 0xad, 0xae, 0xa7, 0xa8][usize::from(i / 8) % 7],
            ),
            5 => dev.put_keycode(0xf0),
            6 => dev.advance_time(u64::from(i) * 1_000_000),
            _ => dev.mouse_fake_event(),
        }
        for q in [dev.keyboard().common(), dev.mouse().common()] {
            assert!((0..=24).contains(&q.len()), "queue length {}", q.len());
            assert!((0..256).contains(&q.rptr()) && (0..256).contains(&q.wptr()));
        }
    }
}

/// (rptr, wptr, count, cwptr subsection) as sent.
type StreamQueue = (i32, i32, i32, Option<i32>);
/// (rptr, wptr, count, cwptr) after the load.
type LoadedQueue = (i32, i32, i32, i32);

fn load_kbd(body: &[u8]) -> Ps2Keyboard {
    from_bytes(body, 3).expect("hostile pointers load (sanitised)")
}

#[test]
fn keyboard_queue_sanitisation_cases() {
    // (rptr, wptr, count, cwptr) in the stream -> (rptr, wptr, count, cwptr) loaded.
    // Rules: replies = (cwptr - rptr) mod 256 capped at 8 (0 without cwptr);
    // count clamped to replies..=replies+16; rptr mod 256; wptr = rptr + count;
    // cwptr = rptr + replies, or -1 without replies (all mod 256).
    let cases: &[(StreamQueue, LoadedQueue)] = &[
        ((0x7fff_ffff, 0, 1, None), (255, 0, 1, -1)),
        ((0, 77, -1, None), (0, 0, 0, -1)),
        ((0, 0, 1000, None), (0, 16, 16, -1)),
        ((i32::MIN, i32::MIN, i32::MIN, None), (0, 0, 0, -1)),
        ((-1, -1, i32::MAX, None), (255, 15, 16, -1)),
        // A legitimate reply block: kept as it is.
        ((253, 0, 3, Some(0)), (253, 0, 3, 0)),
        // cwptr far away: at most 8 replies; count raised to cover them.
        ((0, 0, 0, Some(0x7fff_ffff)), (0, 8, 8, 8)),
        ((10, 0, 1000, Some(0x1234_5678)), (10, 34, 24, 18)),
        ((0x7fff_ffff, 0, -1, Some(-2)), (255, 7, 8, 7)),
        ((5, 0, 2, Some(5)), (5, 7, 2, -1)),
        ((5, 0, 2, Some(7)), (5, 7, 2, 7)),
        ((5, 0, 20, Some(7)), (5, 23, 18, 7)),
    ];
    for &((r, w, c, cw), expected) in cases {
        let k = load_kbd(&kbd_body(r, w, c, cw));
        let q = k.common();
        assert_eq!(
            (q.rptr(), q.wptr(), q.len(), q.cwptr()),
            expected,
            "stream rptr {r:#x} wptr {w:#x} count {c} cwptr {cw:?}"
        );
        let mut dev = I8042::default();
        *dev.keyboard_mut() = k;
        exercise(&mut dev);
    }
}

#[test]
fn mouse_queue_sanitisation_cases() {
    let cases = [
        ((0x7fff_ffff, 0, 1), (255, 0, 1)),
        ((3, 3, -1), (3, 3, 0)),
        ((3, 3, 1000), (3, 19, 16)),
        ((-300, 9, 5), (212, 217, 5)),
    ];
    for ((r, w, c), expected) in cases {
        let m: Ps2Mouse = from_bytes(&mouse_body(r, w, c), 2).unwrap();
        let q = m.common();
        assert_eq!(
            (q.rptr(), q.wptr(), q.len(), q.cwptr()),
            (expected.0, expected.1, expected.2, -1)
        );
        let mut dev = I8042::default();
        *dev.mouse_mut() = m;
        exercise(&mut dev);
    }
}

#[test]
fn hostile_controller_registers_are_harmless() {
    let mut body = vec![0xd4, 0xff, 0xff, 0xff];
    body.extend_from_slice(b"\x05\x14pckbd/extended_state\x00\x00\x00\x00");
    body.extend_from_slice(&[0xff; 10]);
    let mut dev: I8042 = from_bytes(&body, 3).unwrap();
    // Only the meaningful pending bits survive.
    assert_eq!(dev.controller().pending(), 0x3c);
    assert_eq!(dev.controller().write_cmd(), 0xd4);
    exercise(&mut dev);
}

#[test]
fn random_corruption_never_panics() {
    let [kbd, mouse, ctl] = i8042_bodies(&fixture("pc-i8042.mig"));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut loaded = 0;
    for _ in 0..3000 {
        let which = rand() % 3;
        let mut body = [&kbd, &mouse, &ctl][which as usize].clone();
        for _ in 0..1 + rand() % 6 {
            let at = (rand() as usize) % body.len();
            // Favour the pointer and count words.
            let at = if rand() % 2 == 0 { 4 + at % 12 } else { at };
            body[at] = rand() as u8;
        }
        if rand() % 5 == 0 {
            body.truncate((rand() as usize) % body.len());
        }
        let mut dev = I8042::default();
        let ok = match which {
            0 => from_bytes::<Ps2Keyboard>(&body, 3).map(|k| *dev.keyboard_mut() = k),
            1 => from_bytes::<Ps2Mouse>(&body, 2).map(|m| *dev.mouse_mut() = m),
            _ => from_bytes::<I8042>(&body, 3).map(|d| dev = d),
        };
        if ok.is_ok() {
            loaded += 1;
            exercise(&mut dev);
            // What it saves loads again.
            let k = to_bytes(dev.keyboard()).unwrap();
            assert_eq!(
                to_bytes(&from_bytes::<Ps2Keyboard>(&k, 3).unwrap()).unwrap(),
                k
            );
        }
    }
    assert!(loaded > 1000, "only {loaded} corrupted bodies loaded");
}

#[test]
fn truncated_bodies_fail_with_location() {
    let [kbd, mouse, ctl] = i8042_bodies(&fixture("pc-i8042.mig"));
    // A ps2kbd body may legitimately end after its fields or after any subsection.
    for len in 0..kbd.len() {
        let r = from_bytes::<Ps2Keyboard>(&kbd[..len], 3);
        assert_eq!(r.is_ok(), [284, 309].contains(&len), "ps2kbd cut at {len}");
    }
    let e = from_bytes::<Ps2Keyboard>(&kbd[..100], 3).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
    assert_eq!(e.path_string(), "ps2kbd.parent_obj.queue.data");
    assert_eq!(e.offset(), Some(16));
    // Cut inside a subsection header: not recognised, so the rest is trailing.
    let e = from_bytes::<Ps2Keyboard>(&kbd[..300], 3).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes(16)), "{e}");
    // Cut inside a subsection body.
    let e = from_bytes::<Ps2Keyboard>(&kbd[..306], 3).unwrap_err();
    assert_eq!(e.path_string(), "ps2kbd/ledstate.ledstate", "{e}");

    for len in 0..mouse.len() {
        assert!(
            from_bytes::<Ps2Mouse>(&mouse[..len], 2).is_err(),
            "ps2mouse cut at {len}"
        );
    }
    let e = from_bytes::<Ps2Mouse>(&mouse[..280], 2).unwrap_err();
    assert_eq!(e.path_string(), "ps2mouse.mouse_dx");

    for len in 0..ctl.len() {
        let r = from_bytes::<I8042>(&ctl[..len], 3);
        assert_eq!(r.is_ok(), [4, 24].contains(&len), "pckbd cut at {len}");
    }
    let e = from_bytes::<I8042>(&ctl[..50], 3).unwrap_err();
    assert!(e.to_string().contains("pckbd/extended_state"), "{e}");
}

#[test]
fn wrong_versions_are_refused() {
    let [kbd, mouse, ctl] = i8042_bodies(&fixture("pc-default.mig"));
    let too_new = |e: vmstate_runtime::Error| matches!(e.kind(), ErrorKind::VersionTooNew { .. });
    let too_old = |e: vmstate_runtime::Error| matches!(e.kind(), ErrorKind::VersionTooOld { .. });
    assert!(too_new(from_bytes::<Ps2Keyboard>(&kbd, 4).unwrap_err()));
    assert!(too_old(from_bytes::<Ps2Keyboard>(&kbd, 1).unwrap_err()));
    assert!(too_new(from_bytes::<Ps2Mouse>(&mouse, 3).unwrap_err()));
    assert!(too_old(from_bytes::<Ps2Mouse>(&mouse, 1).unwrap_err()));
    assert!(too_new(from_bytes::<I8042>(&ctl, 4).unwrap_err()));
    let e = from_bytes::<I8042>(&ctl, 2).unwrap_err();
    assert!(too_old(from_bytes::<I8042>(&ctl, 2).unwrap_err()));
    assert!(e.to_string().contains("too old"), "{e}");
}

#[test]
fn version_2_keyboard_stream_means_scancode_set_2() {
    // v2 bodies have no scancode_set field.
    let mut body = common_state(-1, 0, 0, 0);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    let mut k = Ps2Keyboard::default();
    k.write(0xf0, &mut |_| {});
    k.write(0x03, &mut |_| {});
    assert_eq!(k.scancode_set(), 3);
    k.load(&mut Reader::new(&body[..]), 2).unwrap();
    assert_eq!((k.scancode_set(), k.translate()), (2, true));
    // The same body at version 3 is short by the scancode_set field.
    assert!(from_bytes::<Ps2Keyboard>(&body, 3).is_err());
}

#[test]
fn unknown_subsection_and_bad_bool_fail() {
    let mut body = kbd_body(0, 0, 0, None);
    body.extend_from_slice(b"\x05\x0cps2kbd/bogus\x00\x00\x00\x01");
    let e = from_bytes::<Ps2Keyboard>(&body, 3).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::UnknownSubsection { .. }),
        "{e}"
    );

    let mut body = kbd_body(0, 0, 0, None);
    body.extend_from_slice(b"\x05\x14ps2kbd/need_high_bit\x00\x00\x00\x01\x02");
    let e = from_bytes::<Ps2Keyboard>(&body, 3).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidBool(2)), "{e}");
    assert!(e.to_string().contains("need_high_bit"), "{e}");
}

#[test]
fn absent_subsections_take_qemus_defaults() {
    // No "pckbd_outport": the port follows the status; no extended state: the
    // output-buffer source follows the status and the compat pending bits apply.
    let dev: I8042 = from_bytes(&[0, 0x39, 0x47, 0x02], 3).unwrap();
    let c = dev.controller();
    assert_eq!(c.outport(), 0xff);
    assert_eq!(c.obsrc(), 2);
    assert_eq!(c.pending(), 0x20);
    assert!(dev.irq_mouse().level);
    let dev: I8042 = from_bytes(&[0, 0x19, 0x03, 0x01], 3).unwrap();
    assert_eq!(
        (dev.controller().obsrc(), dev.controller().pending()),
        (1, 0x10)
    );
    assert!(dev.irq_kbd().level);
    let dev: I8042 = from_bytes(&[0, 0x18, 0x03, 0x00], 3).unwrap();
    assert_eq!(dev.controller().obsrc(), 0);
    // A destination without extended state still loads the subsection.
    let mut old = I8042::new(vmstate_devices::pckbd::I8042Config {
        extended_state: false,
        kbd_throttle: false,
    });
    let [_, _, ctl] = i8042_bodies(&fixture("pc-i8042.mig"));
    old.load(&mut Reader::new(&ctl[..]), 3).unwrap();
    assert_eq!(
        (old.controller().obsrc(), old.controller().cbdata()),
        (2, 0xa5)
    );
    // ... and saves the pre-6.1 form: compat pending bits, no subsection.
    assert_eq!(to_bytes(&old).unwrap()[..4], [0x00, 0x39, 0x47, 0x03]);
}

#[test]
fn throttle_flag_round_trips() {
    let mut src = I8042::new(vmstate_devices::pckbd::I8042Config {
        extended_state: true,
        kbd_throttle: true,
    });
    src.key_event(KeyCode::A, true);
    src.key_event(KeyCode::B, true);
    assert_eq!(src.read_port(0x60), 0x1c);
    let body = to_bytes(&src).unwrap();
    assert_eq!(&body[body.len() - 10..body.len() - 6], &[0, 0, 0, 1]);
    // A throttling destination re-arms its timer to expire at once...
    let mut dst = I8042::new(vmstate_devices::pckbd::I8042Config {
        extended_state: true,
        kbd_throttle: true,
    });
    dst.load(&mut Reader::new(&body[..]), 3).unwrap();
    assert_eq!(to_bytes(&dst).unwrap(), body);
    assert_eq!(dst.read_port(0x64) & 1, 0);
    // (the keyboard section carries the queued byte)
    *dst.keyboard_mut() = from_bytes(&to_bytes(src.keyboard()).unwrap(), 3).unwrap();
    dst.advance_time(0);
    assert_eq!(dst.read_port(0x64) & 1, 1);
    assert_eq!(dst.read_port(0x60), 0x32);
    // ... a non-throttling one offers the pending byte right away.
    let dst: I8042 = from_bytes(&body, 3).unwrap();
    assert_eq!(dst.read_status(), 0x19);
}
