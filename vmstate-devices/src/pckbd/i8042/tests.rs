//! Unit tests of the controller command set, output-buffer arbitration and
//! interrupt lines.

use super::*;
use crate::pckbd::regs::{mode, status};

fn dev() -> I8042 {
    I8042::default()
}

/// Port 0x64 ← cmd.
fn cmd(d: &mut I8042, c: u8) {
    d.write_port(0x64, c);
}

/// Port 0x64 ← cmd, port 0x60 ← data.
fn cmd_data(d: &mut I8042, c: u8, data: u8) {
    d.write_port(0x64, c);
    d.write_port(0x60, data);
}

/// What a driver does: read while the status says the buffer is full.
fn drain(d: &mut I8042) -> Vec<u8> {
    let mut out = Vec::new();
    while d.read_port(0x64) & status::OBF != 0 {
        out.push(d.read_port(0x60));
    }
    out
}

#[test]
fn reset_state() {
    let mut d = dev();
    let c = d.controller();
    assert_eq!(
        (c.status(), c.mode(), c.outport(), c.write_cmd()),
        (0x18, 0x03, 0xcf, 0)
    );
    assert!(!d.irq_kbd().level && !d.irq_mouse().level);
    assert!(d.a20_enabled());
    assert_eq!(d.read_port(0x61), 0xff);
}

#[test]
fn self_test_and_interface_tests() {
    let mut d = dev();
    cmd(&mut d, 0xaa);
    assert_eq!(d.read_port(0x64), 0x18 | status::SELFTEST | status::OBF);
    assert!(d.irq_kbd().level);
    assert_eq!(d.read_port(0x60), 0x55);
    assert!(!d.irq_kbd().level);
    assert_eq!(d.read_port(0x64) & status::OBF, 0);
    cmd(&mut d, 0xab);
    assert_eq!(drain(&mut d), [0x00]);
    cmd(&mut d, 0xa9);
    assert_eq!(drain(&mut d), [0x00]);
    cmd(&mut d, 0xc0);
    assert_eq!(drain(&mut d), [0x80]);
    // An empty buffer reads the last byte again.
    assert_eq!(d.read_port(0x60), 0x80);
    // Unknown / unimplemented commands are ignored.
    cmd(&mut d, 0xa1);
    cmd(&mut d, 0x01);
    assert!(drain(&mut d).is_empty());
}

#[test]
fn command_byte_read_write() {
    let mut d = dev();
    cmd(&mut d, 0x20);
    assert_eq!(drain(&mut d), [0x03]);
    cmd_data(&mut d, 0x60, 0x47);
    assert_eq!(d.controller().mode(), 0x47);
    assert!(d.keyboard().translate());
    cmd(&mut d, 0x20);
    assert_eq!(drain(&mut d), [0x47]);
    assert_eq!(d.controller().write_cmd(), 0);
    cmd_data(&mut d, 0x60, 0x03);
    assert!(!d.keyboard().translate());
}

#[test]
fn half_written_command_waits_for_its_data() {
    let mut d = dev();
    cmd(&mut d, 0x60);
    assert_eq!(d.controller().write_cmd(), 0x60);
    // Reading does not disturb it; the next data byte completes it.
    let _ = d.read_port(0x64);
    d.write_port(0x60, 0x01);
    assert_eq!(
        (d.controller().mode(), d.controller().write_cmd()),
        (0x01, 0)
    );
}

#[test]
fn output_port_and_a20() {
    let mut d = dev();
    cmd(&mut d, 0xd0);
    assert_eq!(drain(&mut d), [0xcf]);
    cmd(&mut d, 0xdd);
    assert!(!d.a20_enabled());
    cmd(&mut d, 0xdf);
    assert!(d.a20_enabled());
    cmd_data(&mut d, 0xd1, 0xcd);
    assert!(!d.a20_enabled());
    assert_eq!(
        d.take_events(),
        [
            I8042Event::A20(false),
            I8042Event::A20(true),
            I8042Event::A20(false)
        ]
    );
    // The reply is the port as it was before the reply filled the buffer.
    cmd(&mut d, 0xd0);
    assert_eq!(drain(&mut d), [0xcd]);
    // Bit 0 clear resets the machine.
    cmd_data(&mut d, 0xd1, 0xce);
    assert_eq!(
        d.take_events(),
        [I8042Event::A20(true), I8042Event::SystemReset]
    );
}

#[test]
fn pulse_commands() {
    let mut d = dev();
    for c in [0xf1, 0xf3, 0xfd, 0xff] {
        cmd(&mut d, c);
    }
    assert!(d.take_events().is_empty());
    for c in [0xfe, 0xf0, 0xfc] {
        cmd(&mut d, c);
    }
    assert_eq!(d.take_events(), [I8042Event::SystemReset; 3]);
    assert!(drain(&mut d).is_empty());
}

#[test]
fn write_output_buffers() {
    let mut d = dev();
    cmd_data(&mut d, 0xd2, 0x5a);
    assert_eq!(
        d.read_port(0x64) & (status::OBF | status::MOUSE_OBF),
        status::OBF
    );
    assert!(d.irq_kbd().level && !d.irq_mouse().level);
    assert_eq!(d.read_port(0x60), 0x5a);
    cmd_data(&mut d, 0xd3, 0xa5);
    assert_eq!(
        d.read_port(0x64) & (status::OBF | status::MOUSE_OBF),
        status::OBF | status::MOUSE_OBF
    );
    assert!(d.irq_mouse().level && !d.irq_kbd().level);
    assert_eq!(d.read_port(0x60), 0xa5);
    assert!(!d.irq_mouse().level);
    // A second controller byte replaces an unread first one.
    cmd_data(&mut d, 0xd2, 1);
    cmd_data(&mut d, 0xd2, 2);
    assert_eq!(drain(&mut d), [2]);
}

#[test]
fn keyboard_and_mouse_through_the_controller() {
    let mut d = dev();
    d.write_port(0x60, 0xf2);
    assert_eq!(drain(&mut d), [0xfa, 0xab, 0x83]);
    cmd_data(&mut d, 0xd4, 0xf2);
    assert_eq!(d.read_port(0x64) & status::MOUSE_OBF, status::MOUSE_OBF);
    assert!(d.irq_mouse().level);
    assert_eq!(drain(&mut d), [0xfa, 0x00]);
    cmd_data(&mut d, 0xd4, 0xf4);
    assert_eq!(drain(&mut d), [0xfa]);
    d.mouse_move(Axis::X, 4);
    d.mouse_button(MouseButton::Right, true);
    d.mouse_sync();
    assert_eq!(drain(&mut d), [0x0a, 4, 0]);
}

#[test]
fn translation_follows_the_kcc_bit() {
    let mut d = dev();
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::A, false);
    assert_eq!(drain(&mut d), [0x1c, 0xf0, 0x1c]);
    cmd_data(&mut d, 0x60, 0x03 | mode::KCC);
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::A, false);
    d.put_keycode(0x5a);
    assert_eq!(drain(&mut d), [0x1e, 0x9e, 0x1c]);
    d.write_port(0x60, 0xf2);
    assert_eq!(drain(&mut d), [0xfa, 0xab, 0x41]);
}

#[test]
fn disabled_interfaces_hold_their_data() {
    let mut d = dev();
    cmd(&mut d, 0xad);
    d.key_event(KeyCode::B, true);
    assert_eq!(d.read_port(0x64) & status::OBF, 0);
    assert!(!d.irq_kbd().level);
    cmd(&mut d, 0xae);
    assert!(d.irq_kbd().level);
    assert_eq!(drain(&mut d), [0x32]);

    cmd_data(&mut d, 0xd4, 0xf4);
    assert_eq!(drain(&mut d), [0xfa]);
    cmd(&mut d, 0xa7);
    d.mouse_move(Axis::X, 1);
    d.mouse_sync();
    assert_eq!(d.read_port(0x64) & status::OBF, 0);
    cmd(&mut d, 0xa8);
    assert_eq!(drain(&mut d), [0x08, 1, 0]);

    // Writing to the keyboard re-enables its interface.
    cmd(&mut d, 0xad);
    d.write_port(0x60, 0xee);
    assert_eq!(d.controller().mode() & mode::DISABLE_KBD, 0);
    assert_eq!(drain(&mut d), [0xee]);
}

#[test]
fn interrupt_enable_bits() {
    let mut d = dev();
    cmd_data(&mut d, 0x60, 0x00);
    d.key_event(KeyCode::C, true);
    assert_eq!(d.read_port(0x64) & status::OBF, status::OBF);
    assert!(!d.irq_kbd().level);
    // Enabling the interrupt with the buffer full raises the line at once.
    cmd_data(&mut d, 0x60, mode::KBD_INT);
    // (the mode write was itself data for the controller: the key is still there)
    assert!(d.irq_kbd().level);
    assert_eq!(drain(&mut d), [0x21]);
}

#[test]
fn arbitration_priorities() {
    let mut d = dev();
    cmd_data(&mut d, 0xd4, 0xf4);
    assert_eq!(drain(&mut d), [0xfa]);
    // Keyboard data first, then mouse data, then a controller reply.
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::S, true);
    d.mouse_move(Axis::X, 1);
    d.mouse_sync();
    cmd(&mut d, 0xaa);
    // The keyboard already owns the buffer; while its read lowers and re-raises
    // its line the controller reply takes the buffer, then the fixed priority
    // (controller, keyboard, mouse) decides.
    assert_eq!(drain(&mut d), [0x1c, 0x55, 0x1b, 0x08, 1, 0]);

    // Without a controller reply, keyboard and mouse alternate byte by byte:
    // each read lowers the reader's line (handing the buffer to the other source)
    // before raising it again.
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::S, true);
    d.mouse_move(Axis::X, 2);
    d.mouse_sync();
    assert_eq!(drain(&mut d), [0x1c, 0x08, 0x1b, 2, 0]);
}

#[test]
fn controller_replies_without_extended_state_use_the_device_queues() {
    let mut d = I8042::new(I8042Config {
        extended_state: false,
        kbd_throttle: true, // refused without extended state
    });
    assert!(!d.controller().kbd_throttle());
    cmd(&mut d, 0xaa);
    assert_eq!(d.keyboard().common().queued(), [0x55]);
    cmd_data(&mut d, 0xd3, 0x77);
    assert_eq!(d.mouse().common().queued(), [0x77]);
    assert_eq!(drain(&mut d), [0x55, 0x77]);
    // A disabled keyboard does not hold its data back without extended state.
    cmd(&mut d, 0xad);
    d.key_event(KeyCode::A, true);
    assert_eq!(d.read_port(0x64) & status::OBF, status::OBF);
}

#[test]
fn keyboard_throttle_spaces_bytes_by_a_millisecond() {
    let mut d = I8042::new(I8042Config {
        extended_state: true,
        kbd_throttle: true,
    });
    d.advance_time(5_000_000);
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::S, true);
    assert_eq!(d.read_port(0x60), 0x1c);
    assert_eq!(d.controller().throttle_deadline(), Some(6_000_000));
    assert_eq!(d.read_port(0x64) & status::OBF, 0);
    d.advance_time(5_999_999);
    assert_eq!(d.read_port(0x64) & status::OBF, 0);
    d.advance_time(6_000_000);
    assert_eq!(d.read_port(0x64) & status::OBF, status::OBF);
    assert!(d.irq_kbd().level);
    assert_eq!(d.read_port(0x60), 0x1b);
    d.advance_time(7_000_000);
    assert_eq!(d.controller().throttle_deadline(), None);
}

#[test]
fn machine_reset() {
    let mut d = dev();
    cmd_data(&mut d, 0x60, 0x47);
    d.write_port(0x60, 0xed);
    d.write_port(0x60, 0x04);
    cmd(&mut d, 0xdd);
    d.key_event(KeyCode::A, true);
    cmd(&mut d, 0x60); // left pending across the reset, as in QEMU
    d.reset();
    let c = d.controller();
    assert_eq!(
        (c.status(), c.mode(), c.outport(), c.pending()),
        (0x18, 0x03, 0xcf, 0)
    );
    assert_eq!(c.write_cmd(), 0x60);
    assert!(d.keyboard().common().is_empty());
    assert_eq!(d.keyboard().ledstate(), 4);
    assert!(!d.keyboard().translate());
    assert!(!d.irq_kbd().level);
}

#[test]
fn rising_edges_are_counted() {
    let mut d = dev();
    d.key_event(KeyCode::A, true);
    d.key_event(KeyCode::A, false);
    assert_eq!(drain(&mut d).len(), 3);
    assert_eq!(d.irq_kbd().rising_edges, 3);
}
