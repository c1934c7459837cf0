//! The PS/2 keyboard protocol: host commands, replies, key events and scancodes.
//!
//! Every method that can queue or consume bytes takes the keyboard's interrupt
//! line as `irq`: it is called with `true` when data becomes available and
//! `false` when a read empties the output (QEMU's `qemu_set_irq` on the device's
//! line), in the exact order QEMU drives it.

use super::keyboard::Ps2Keyboard;
use super::keys::{modifier, translate_set2_to_set1, KeyCode};
use super::queue::NONE;

/// Keyboard commands (host → keyboard).
pub mod command {
    /// Set LEDs; the next byte is the LED mask.
    pub const SET_LEDS: u8 = 0xed;
    /// Echo: replies 0xee.
    pub const ECHO: u8 = 0xee;
    /// Get (argument 0) or set (1..=3) the scancode set.
    pub const SCANCODE: u8 = 0xf0;
    /// Identify: ACK, 0xab, then 0x41 (translated) or 0x83.
    pub const GET_ID: u8 = 0xf2;
    /// Set typematic rate/delay; the next byte is the argument.
    pub const SET_RATE: u8 = 0xf3;
    /// Enable scanning.
    pub const ENABLE: u8 = 0xf4;
    /// Reset to defaults and disable scanning.
    pub const RESET_DISABLE: u8 = 0xf5;
    /// Reset to defaults and enable scanning.
    pub const RESET_ENABLE: u8 = 0xf6;
    /// Set all keys typematic/make/break (acknowledged, no effect).
    pub const SET_TYPEMATIC: u8 = 0xfa;
    /// Set a key make/break; the next byte is the key (acknowledged, no effect).
    pub const SET_MAKE_BREAK: u8 = 0xfc;
    /// Resend the last byte: not emulated, answered with RESEND like unknown commands.
    pub const RESEND: u8 = 0xfe;
    /// Reset and self test: ACK then 0xaa.
    pub const RESET: u8 = 0xff;
}

/// Keyboard replies (keyboard → host).
pub mod reply {
    /// Power-on reset / self test passed.
    pub const POR: u8 = 0xaa;
    /// First keyboard ID byte.
    pub const ID: u8 = 0xab;
    /// Command acknowledged.
    pub const ACK: u8 = 0xfa;
    /// Command not understood, send it again.
    pub const RESEND: u8 = 0xfe;
}

/// Set-1 / set-2 byte sequences of the two keys with special make/break codes.
mod special {
    pub const SET1_PAUSE_CTRL: &[u8] = &[0xe0, 0x46, 0xe0, 0xc6];
    pub const SET1_PAUSE: &[u8] = &[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5];
    pub const SET1_PRINT_ALT_L: [&[u8]; 2] = [&[0xb8, 0x38, 0x54], &[0xd4, 0xb8, 0x38]];
    pub const SET1_PRINT_ALT_R: [&[u8]; 2] = [
        &[0xe0, 0xb8, 0xe0, 0x38, 0x54],
        &[0xd4, 0xe0, 0xb8, 0xe0, 0x38],
    ];
    pub const SET1_PRINT_SHIFT_CTRL: [&[u8]; 2] = [&[0xe0, 0x37], &[0xe0, 0xb7]];
    pub const SET1_PRINT: [&[u8]; 2] = [&[0xe0, 0x2a, 0xe0, 0x37], &[0xe0, 0xb7, 0xe0, 0xaa]];

    pub const SET2_PAUSE_CTRL: &[u8] = &[0xe0, 0x7e, 0xe0, 0xf0, 0x7e];
    pub const SET2_PAUSE: &[u8] = &[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77];
    pub const SET2_PRINT_ALT_L: [&[u8]; 2] =
        [&[0xf0, 0x11, 0x11, 0x84], &[0xf0, 0x84, 0xf0, 0x11, 0x11]];
    pub const SET2_PRINT_ALT_R: [&[u8]; 2] = [
        &[0xe0, 0xf0, 0x11, 0xe0, 0x11, 0x84],
        &[0xf0, 0x84, 0xe0, 0xf0, 0x11, 0xe0, 0x11],
    ];
    pub const SET2_PRINT_SHIFT_CTRL: [&[u8]; 2] = [&[0xe0, 0x7c], &[0xe0, 0xf0, 0x7c]];
    pub const SET2_PRINT: [&[u8]; 2] = [
        &[0xe0, 0x12, 0xe0, 0x7c],
        &[0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12],
    ];
}

impl Ps2Keyboard {
    /// Device reset (QEMU's reset of `ps2-kbd`): no pending command, empty queue,
    /// line lowered, scanning on, set 2, no translation. The LEDs keep their state.
    pub fn reset(&mut self, irq: &mut dyn FnMut(bool)) {
        self.parent_obj.reset();
        irq(false);
        self.scan_enabled = 1;
        self.translate = 0;
        self.scancode_set = 2;
        self.modifiers = 0;
    }

    /// Queues one byte as device data (how the controller's own replies travel
    /// without extended state).
    pub(crate) fn queue_byte(&mut self, b: u8, irq: &mut dyn FnMut(bool)) {
        self.parent_obj.push(&[b], irq);
    }

    /// The controller's KCC bit: translate set-2 output to set 1.
    pub fn set_translation(&mut self, on: bool) {
        self.translate = on as i32;
    }

    /// Reads the next byte for the controller (QEMU `ps2_read_data`).
    pub fn read(&mut self, irq: &mut dyn FnMut(bool)) -> u8 {
        self.parent_obj.read(irq)
    }

    /// A byte from the host (QEMU `ps2_write_keyboard`): a command, or the
    /// argument of the pending one. Unread replies to earlier commands are
    /// discarded first.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    /// let mut kbd = Ps2Keyboard::default();
    /// let mut irq = false;
    /// kbd.write(0xed, &mut |l| irq = l); // set LEDs ...
    /// kbd.write(0x04, &mut |l| irq = l); // ... caps lock
    /// assert!(irq);
    /// assert_eq!(kbd.ledstate(), 4);
    /// assert_eq!(kbd.read(&mut |l| irq = l), 0xfa);
    /// assert!(!irq);
    /// ```
    pub fn write(&mut self, val: u8, irq: &mut dyn FnMut(bool)) {
        let q = &mut self.parent_obj;
        q.drop_replies();
        let pending = q.write_cmd();
        let reply: &[u8] = match pending {
            c if c == i32::from(command::SCANCODE) => {
                q.set_write_cmd(NONE);
                match val {
                    0 => {
                        // Reply with the current set, as a translated byte if the
                        // controller translates (a hostile set number is taken
                        // modulo 256 rather than reading outside the table).
                        let set = self.scancode_set as u8;
                        let shown = if self.translate != 0 {
                            translate_set2_to_set1(set)
                        } else {
                            set
                        };
                        self.parent_obj.push_reply(&[reply::ACK, shown], irq);
                        return;
                    }
                    1..=3 => {
                        self.scancode_set = i32::from(val);
                        &[reply::ACK]
                    }
                    _ => &[reply::RESEND],
                }
            }
            c if c == i32::from(command::SET_LEDS) => {
                q.set_write_cmd(NONE);
                self.ledstate.ledstate = i32::from(val);
                &[reply::ACK]
            }
            c if c == i32::from(command::SET_RATE) || c == i32::from(command::SET_MAKE_BREAK) => {
                q.set_write_cmd(NONE);
                &[reply::ACK]
            }
            // No command pending (-1, or any other value a stream may carry).
            _ => return self.command(val, irq),
        };
        self.parent_obj.push_reply(reply, irq);
    }

    /// A command byte with no command pending.
    fn command(&mut self, val: u8, irq: &mut dyn FnMut(bool)) {
        let reply: &[u8] = match val {
            0x00 => &[reply::ACK],
            0x05 => &[reply::RESEND],
            command::GET_ID => {
                // An MF2 keyboard; its second ID byte depends on translation.
                let id2 = if self.translate != 0 { 0x41 } else { 0x83 };
                self.parent_obj
                    .push_reply(&[reply::ACK, reply::ID, id2], irq);
                return;
            }
            command::ECHO => &[command::ECHO],
            command::ENABLE => {
                self.scan_enabled = 1;
                &[reply::ACK]
            }
            command::SCANCODE | command::SET_LEDS | command::SET_RATE | command::SET_MAKE_BREAK => {
                self.parent_obj.set_write_cmd(i32::from(val));
                &[reply::ACK]
            }
            command::RESET_DISABLE => {
                self.reset_to_defaults();
                self.scan_enabled = 0;
                &[reply::ACK]
            }
            command::RESET_ENABLE => {
                self.reset_to_defaults();
                self.scan_enabled = 1;
                &[reply::ACK]
            }
            command::RESET => {
                self.reset_to_defaults();
                &[reply::ACK, reply::POR]
            }
            command::SET_TYPEMATIC => &[reply::ACK],
            _ => &[reply::RESEND],
        };
        self.parent_obj.push_reply(reply, irq);
    }

    /// The keyboard-level reset of commands 0xf5, 0xf6 and 0xff: scanning on,
    /// set 2, queue emptied, LEDs off.
    fn reset_to_defaults(&mut self) {
        self.scan_enabled = 1;
        self.scancode_set = 2;
        self.parent_obj.reset_queue();
        self.ledstate.ledstate = 0;
    }

    /// Queues one scancode byte of the current set, translating set 2 to set 1
    /// when the controller asks for it (QEMU `ps2_put_keycode`). The data is
    /// dropped when the queue is full.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    /// let mut kbd = Ps2Keyboard::default();
    /// kbd.set_translation(true);
    /// for b in [0x1c, 0xf0, 0x1c] {
    ///     kbd.put_keycode(b, &mut |_| {});
    /// }
    /// assert_eq!(kbd.common().queued(), [0x1e, 0x9e]);
    /// ```
    pub fn put_keycode(&mut self, code: u8, irq: &mut dyn FnMut(bool)) {
        if self.translate == 0 {
            self.parent_obj.push(&[code], irq);
        } else if code == 0xf0 {
            self.need_high_bit.need_high_bit = true;
        } else if self.need_high_bit.need_high_bit {
            self.parent_obj
                .push(&[translate_set2_to_set1(code) | 0x80], irq);
            self.need_high_bit.need_high_bit = false;
        } else {
            self.parent_obj.push(&[translate_set2_to_set1(code)], irq);
        }
    }

    fn put_all(&mut self, codes: &[u8], irq: &mut dyn FnMut(bool)) {
        for &c in codes {
            self.put_keycode(c, irq);
        }
    }

    /// A host key press (`down`) or release, converted to the scancodes of the
    /// current set (QEMU `ps2_keyboard_event`). Ignored while scanning is
    /// disabled; keys without a code in the current set are ignored.
    ///
    /// [`KeyCode::Sysrq`] is taken as [`KeyCode::Print`], as QEMU's input layer
    /// normalises it for every device (`qemu_input_event_send`), so Alt+SysRq
    /// gives the Alt+Print sequence.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{KeyCode, Ps2Keyboard};
    /// let mut kbd = Ps2Keyboard::default();
    /// kbd.key_event(KeyCode::Home, true, &mut |_| {});
    /// kbd.key_event(KeyCode::Home, false, &mut |_| {});
    /// assert_eq!(kbd.common().queued(), [0xe0, 0x6c, 0xe0, 0xf0, 0x6c]);
    /// ```
    pub fn key_event(&mut self, key: KeyCode, down: bool, irq: &mut dyn FnMut(bool)) {
        let key = if key == KeyCode::Sysrq {
            KeyCode::Print
        } else {
            key
        };
        if self.scan_enabled == 0 {
            return;
        }
        let bit = key.modifier_bit();
        if down {
            self.modifiers |= bit;
        } else {
            self.modifiers &= !bit;
        }
        match self.scancode_set {
            1 => self.key_set1(key, down, irq),
            2 => self.key_set2(key, down, irq),
            3 => {
                let code = key.set3();
                if code != 0 {
                    if !down {
                        self.put_keycode(0xf0, irq);
                    }
                    self.put_keycode(code, irq);
                }
            }
            _ => {}
        }
    }

    /// The Print-key variant for the held modifiers: Alt, right Alt, Shift/Ctrl, none.
    fn print_variant(&self) -> usize {
        use modifier::*;
        if self.modifiers & ALT_L != 0 {
            0
        } else if self.modifiers & ALT_R != 0 {
            1
        } else if self.modifiers & (SHIFT_L | CTRL_L | SHIFT_R | CTRL_R) != 0 {
            2
        } else {
            3
        }
    }

    fn ctrl_held(&self) -> bool {
        self.modifiers & (modifier::CTRL_L | modifier::CTRL_R) != 0
    }

    fn key_set1(&mut self, key: KeyCode, down: bool, irq: &mut dyn FnMut(bool)) {
        use special::*;
        let updown = usize::from(!down);
        match key {
            KeyCode::Pause if down => {
                let seq = if self.ctrl_held() {
                    SET1_PAUSE_CTRL
                } else {
                    SET1_PAUSE
                };
                self.put_all(seq, irq);
            }
            KeyCode::Pause => {}
            KeyCode::Print => {
                let seqs = [
                    SET1_PRINT_ALT_L,
                    SET1_PRINT_ALT_R,
                    SET1_PRINT_SHIFT_CTRL,
                    SET1_PRINT,
                ];
                self.put_all(seqs[self.print_variant()][updown], irq);
            }
            _ => {
                let code = key.set1();
                if code == 0 {
                    return;
                }
                if code > 0xff {
                    self.put_keycode((code >> 8) as u8, irq);
                }
                let byte = (code & 0xff) as u8;
                self.put_keycode(if down { byte } else { byte | 0x80 }, irq);
            }
        }
    }

    fn key_set2(&mut self, key: KeyCode, down: bool, irq: &mut dyn FnMut(bool)) {
        use special::*;
        let updown = usize::from(!down);
        match key {
            KeyCode::Pause if down => {
                let seq = if self.ctrl_held() {
                    SET2_PAUSE_CTRL
                } else {
                    SET2_PAUSE
                };
                self.put_all(seq, irq);
            }
            KeyCode::Pause => {}
            KeyCode::Print => {
                let seqs = [
                    SET2_PRINT_ALT_L,
                    SET2_PRINT_ALT_R,
                    SET2_PRINT_SHIFT_CTRL,
                    SET2_PRINT,
                ];
                self.put_all(seqs[self.print_variant()][updown], irq);
            }
            _ => {
                let code = key.set2();
                if code == 0 {
                    return;
                }
                if code > 0xff {
                    self.put_keycode((code >> 8) as u8, irq);
                }
                if !down {
                    self.put_keycode(0xf0, irq);
                }
                self.put_keycode((code & 0xff) as u8, irq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kbd() -> Ps2Keyboard {
        Ps2Keyboard::default()
    }

    fn drain(k: &mut Ps2Keyboard) -> Vec<u8> {
        let mut out = Vec::new();
        while !k.common().is_empty() {
            out.push(k.read(&mut |_| {}));
        }
        out
    }

    fn send(k: &mut Ps2Keyboard, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            k.write(b, &mut |_| {});
            out.extend(drain(k));
        }
        out
    }

    #[test]
    fn reset_echo_and_id() {
        let mut k = kbd();
        assert_eq!(send(&mut k, &[0xff]), [0xfa, 0xaa]);
        assert_eq!(send(&mut k, &[0xee]), [0xee]);
        assert_eq!(send(&mut k, &[0xf2]), [0xfa, 0xab, 0x83]);
        k.set_translation(true);
        assert_eq!(send(&mut k, &[0xf2]), [0xfa, 0xab, 0x41]);
        assert_eq!(
            send(&mut k, &[0x00, 0x05, 0xfe, 0x42]),
            [0xfa, 0xfe, 0xfe, 0xfe]
        );
    }

    #[test]
    fn leds_scancode_set_and_typematic() {
        let mut k = kbd();
        assert_eq!(send(&mut k, &[0xed, 0x07]), [0xfa, 0xfa]);
        assert_eq!(k.ledstate(), 7);
        assert_eq!(send(&mut k, &[0xf0, 0x00]), [0xfa, 0xfa, 0x02]);
        assert_eq!(send(&mut k, &[0xf0, 0x03]), [0xfa, 0xfa]);
        assert_eq!(k.scancode_set(), 3);
        assert_eq!(send(&mut k, &[0xf0, 0x04]), [0xfa, 0xfe]);
        assert_eq!(k.scancode_set(), 3);
        k.set_translation(true);
        // Set 3 reported through the translation table: 0x3f.
        assert_eq!(send(&mut k, &[0xf0, 0x00]), [0xfa, 0xfa, 0x3f]);
        assert_eq!(send(&mut k, &[0xf3, 0x20, 0xfc, 0x1c, 0xfa]), [0xfa; 5]);
        assert_eq!(k.common().write_cmd(), -1);
        // 0xff resets the set and the LEDs.
        assert_eq!(send(&mut k, &[0xff]), [0xfa, 0xaa]);
        assert_eq!((k.scancode_set(), k.ledstate()), (2, 0));
    }

    #[test]
    fn enable_disable_scanning() {
        let mut k = kbd();
        assert_eq!(send(&mut k, &[0xf5]), [0xfa]);
        assert!(!k.scan_enabled());
        k.key_event(KeyCode::A, true, &mut |_| {});
        assert!(k.common().is_empty());
        assert_eq!(send(&mut k, &[0xf4]), [0xfa]);
        k.key_event(KeyCode::A, true, &mut |_| {});
        assert_eq!(drain(&mut k), [0x1c]);
        assert_eq!(send(&mut k, &[0xf6]), [0xfa]);
        assert!(k.scan_enabled());
    }

    #[test]
    fn unread_replies_are_dropped_by_the_next_command() {
        let mut k = kbd();
        k.key_event(KeyCode::A, true, &mut |_| {});
        k.write(0xf2, &mut |_| {});
        assert_eq!(k.common().queued(), [0xfa, 0xab, 0x83, 0x1c]);
        k.write(0xee, &mut |_| {});
        assert_eq!(k.common().queued(), [0xee, 0x1c]);
    }

    #[test]
    fn key_events_in_each_set() {
        let mut k = kbd();
        let press = |k: &mut Ps2Keyboard, key| {
            k.key_event(key, true, &mut |_| {});
            k.key_event(key, false, &mut |_| {});
            drain(k)
        };
        assert_eq!(press(&mut k, KeyCode::A), [0x1c, 0xf0, 0x1c]);
        assert_eq!(
            press(&mut k, KeyCode::KpEnter),
            [0xe0, 0x5a, 0xe0, 0xf0, 0x5a]
        );
        k.scancode_set = 1;
        assert_eq!(press(&mut k, KeyCode::A), [0x1e, 0x9e]);
        assert_eq!(press(&mut k, KeyCode::CtrlR), [0xe0, 0x1d, 0xe0, 0x9d]);
        k.scancode_set = 3;
        assert_eq!(press(&mut k, KeyCode::F1), [0x07, 0xf0, 0x07]);
        assert_eq!(press(&mut k, KeyCode::Power), [0u8; 0]);
    }

    /// Found by the live sweep against QEMU 7.2: SysRq arrives as Print, and
    /// Hangeul/Hanja are 0x72/0x71 in set 1 and absent from sets 2 and 3.
    #[test]
    fn sysrq_is_print_and_lang_keys_are_set1_only() {
        let mut k = kbd();
        k.key_event(KeyCode::Alt, true, &mut |_| {});
        k.key_event(KeyCode::Sysrq, true, &mut |_| {});
        assert_eq!(drain(&mut k), [0x11, 0xf0, 0x11, 0x11, 0x84]);
        for set in [2, 3] {
            k.scancode_set = set;
            k.key_event(KeyCode::Lang1, true, &mut |_| {});
            k.key_event(KeyCode::Lang2, false, &mut |_| {});
            assert!(k.common().is_empty());
        }
        k.scancode_set = 1;
        for key in [KeyCode::Lang1, KeyCode::Lang2] {
            k.key_event(key, true, &mut |_| {});
            k.key_event(key, false, &mut |_| {});
        }
        assert_eq!(drain(&mut k), [0x72, 0xf2, 0x71, 0xf1]);
    }

    #[test]
    fn translation_to_set1_with_break_prefix() {
        let mut k = kbd();
        k.set_translation(true);
        k.key_event(KeyCode::A, true, &mut |_| {});
        assert!(!k.need_high_bit());
        k.key_event(KeyCode::A, false, &mut |_| {});
        k.key_event(KeyCode::Home, false, &mut |_| {});
        assert_eq!(drain(&mut k), [0x1e, 0x9e, 0xe0, 0xc7]);
        k.put_keycode(0xf0, &mut |_| {});
        assert!(k.need_high_bit());
    }

    #[test]
    fn pause_and_print_sequences() {
        let mut k = kbd();
        k.key_event(KeyCode::Pause, true, &mut |_| {});
        k.key_event(KeyCode::Pause, false, &mut |_| {});
        assert_eq!(
            drain(&mut k),
            [0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]
        );
        k.key_event(KeyCode::Print, true, &mut |_| {});
        assert_eq!(drain(&mut k), [0xe0, 0x12, 0xe0, 0x7c]);
        k.key_event(KeyCode::Ctrl, true, &mut |_| {});
        k.key_event(KeyCode::Pause, true, &mut |_| {});
        assert_eq!(drain(&mut k), [0x14, 0xe0, 0x7e, 0xe0, 0xf0, 0x7e]);
        k.scancode_set = 1;
        k.key_event(KeyCode::Print, false, &mut |_| {});
        assert_eq!(drain(&mut k), [0xe0, 0xb7]);
        k.key_event(KeyCode::Ctrl, false, &mut |_| {});
        k.key_event(KeyCode::Alt, true, &mut |_| {});
        k.key_event(KeyCode::Print, true, &mut |_| {});
        assert_eq!(drain(&mut k), [0x9d, 0x38, 0xb8, 0x38, 0x54]);
    }

    #[test]
    fn queue_limit_drops_keys_and_irq_is_raised_per_byte() {
        let mut k = kbd();
        let mut raises = 0;
        for _ in 0..20 {
            k.key_event(KeyCode::A, true, &mut |l| raises += l as i32);
        }
        assert_eq!(k.common().len(), 16);
        assert_eq!(raises, 16);
        // Replies still fit: they use the headroom.
        k.write(0xf2, &mut |_| {});
        assert_eq!(k.common().len(), 19);
    }

    #[test]
    fn reset_keeps_leds() {
        let mut k = kbd();
        send(&mut k, &[0xed, 0x02, 0xf0, 0x01]);
        k.set_translation(true);
        let mut levels = Vec::new();
        k.reset(&mut |l| levels.push(l));
        assert_eq!(levels, [false]);
        assert_eq!(
            (k.ledstate(), k.scancode_set(), k.translate()),
            (2, 2, false)
        );
    }
}
