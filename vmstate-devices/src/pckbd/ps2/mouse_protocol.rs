//! The PS/2 mouse protocol: host commands, replies, movement and packets.
//!
//! As for the keyboard, `irq` is the mouse's interrupt line, driven in QEMU's
//! order. Mouse replies are ordinary queued data (no headroom), so they are lost
//! when the 16-byte queue is full.

use super::mouse::Ps2Mouse;

/// Mouse commands (host → mouse, sent through the controller's 0xd4).
pub mod command {
    /// 1:1 scaling.
    pub const SET_SCALE11: u8 = 0xe6;
    /// 2:1 scaling.
    pub const SET_SCALE21: u8 = 0xe7;
    /// Set resolution; the next byte is the code.
    pub const SET_RES: u8 = 0xe8;
    /// Status request: ACK, status, resolution, sample rate.
    pub const GET_SCALE: u8 = 0xe9;
    /// Stream mode (packets on movement).
    pub const SET_STREAM: u8 = 0xea;
    /// Read data: ACK then one packet (remote mode).
    pub const POLL: u8 = 0xeb;
    /// Leave wrap mode.
    pub const RESET_WRAP: u8 = 0xec;
    /// Wrap mode: every byte but 0xec / 0xff is echoed.
    pub const SET_WRAP: u8 = 0xee;
    /// Remote mode (packets only on 0xeb).
    pub const SET_REMOTE: u8 = 0xf0;
    /// Device id: ACK then 0, 3 or 4.
    pub const GET_TYPE: u8 = 0xf2;
    /// Set sample rate; the next byte is the rate (also the detection knock).
    pub const SET_SAMPLE: u8 = 0xf3;
    /// Enable reporting.
    pub const ENABLE_DEV: u8 = 0xf4;
    /// Disable reporting.
    pub const DISABLE_DEV: u8 = 0xf5;
    /// Defaults: rate 100, resolution 2, status 0.
    pub const SET_DEFAULT: u8 = 0xf6;
    /// Reset: defaults, id 0, queue emptied; ACK, 0xaa, id.
    pub const RESET: u8 = 0xff;
}

/// The acknowledge byte.
pub const ACK: u8 = 0xfa;

/// Bits of the status byte.
pub mod status {
    /// Remote mode.
    pub const REMOTE: u8 = 0x40;
    /// Reporting enabled.
    pub const ENABLED: u8 = 0x20;
    /// 2:1 scaling.
    pub const SCALE21: u8 = 0x10;
}

/// A movement axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Horizontal, positive to the right.
    X,
    /// Vertical, positive downwards (as host input layers report it; the packet
    /// has positive up).
    Y,
}

/// A mouse button, or one step of a wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseButton {
    /// Left button.
    Left,
    /// Middle button.
    Middle,
    /// Right button.
    Right,
    /// Fourth (side) button.
    Side,
    /// Fifth (extra) button.
    Extra,
    /// One wheel step up.
    WheelUp,
    /// One wheel step down.
    WheelDown,
    /// One horizontal wheel step left.
    WheelLeft,
    /// One horizontal wheel step right.
    WheelRight,
}

impl MouseButton {
    /// The bit in the packet's button field.
    fn bit(self) -> u8 {
        match self {
            MouseButton::Left => 0x01,
            MouseButton::Right => 0x02,
            MouseButton::Middle => 0x04,
            MouseButton::Side => 0x08,
            MouseButton::Extra => 0x10,
            _ => 0,
        }
    }
}

impl Ps2Mouse {
    /// Device reset (QEMU's reset of `ps2-mouse`): empty queue, line lowered,
    /// every setting 0.
    pub fn reset(&mut self, irq: &mut dyn FnMut(bool)) {
        self.parent_obj.reset();
        irq(false);
        self.mouse_status = 0;
        self.mouse_resolution = 0;
        self.mouse_sample_rate = 0;
        self.mouse_wrap = 0;
        self.mouse_type = 0;
        self.mouse_detect_state = 0;
        self.mouse_dx = 0;
        self.mouse_dy = 0;
        self.mouse_dz = 0;
        self.mouse_dw = 0;
        self.mouse_buttons = 0;
    }

    /// Queues one byte as device data (how the controller's own replies travel
    /// without extended state).
    pub(crate) fn queue_byte(&mut self, b: u8, irq: &mut dyn FnMut(bool)) {
        self.parent_obj.push(&[b], irq);
    }

    /// Reads the next byte for the controller.
    pub fn read(&mut self, irq: &mut dyn FnMut(bool)) -> u8 {
        self.parent_obj.read(irq)
    }

    fn queue(&mut self, bytes: &[u8], irq: &mut dyn FnMut(bool)) {
        self.parent_obj.push(bytes, irq);
    }

    /// A byte from the host (QEMU `ps2_write_mouse`).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    /// let mut mouse = Ps2Mouse::default();
    /// for b in [0xe8, 0x03, 0xe9] {
    ///     mouse.write(b, &mut |_| {}); // resolution 3, then status request
    /// }
    /// assert_eq!(mouse.common().queued(), [0xfa, 0xfa, 0xfa, 0x00, 0x03, 0x00]);
    /// ```
    pub fn write(&mut self, val: u8, irq: &mut dyn FnMut(bool)) {
        let pending = self.parent_obj.write_cmd();
        if pending == i32::from(command::SET_SAMPLE) {
            self.mouse_sample_rate = val;
            self.detect_step(val);
            self.queue(&[ACK], irq);
            self.parent_obj.set_write_cmd(super::queue::NONE);
        } else if pending == i32::from(command::SET_RES) {
            self.mouse_resolution = val;
            self.queue(&[ACK], irq);
            self.parent_obj.set_write_cmd(super::queue::NONE);
        } else {
            self.command(val, irq);
        }
    }

    /// The IntelliMouse knocks: rates 200,100,80 → id 3; 200,200,80 → id 4.
    fn detect_step(&mut self, rate: u8) {
        self.mouse_detect_state = match (self.mouse_detect_state, rate) {
            (1, 100) => 2,
            (1, 200) => 3,
            (1, _) => 0,
            (2, r) => {
                if r == 80 {
                    self.mouse_type = 3;
                }
                0
            }
            (3, r) => {
                if r == 80 {
                    self.mouse_type = 4;
                }
                0
            }
            // State 0, and any other value a stream may carry, behaves like 0.
            (_, 200) => 1,
            (state, _) => state,
        };
    }

    fn command(&mut self, val: u8, irq: &mut dyn FnMut(bool)) {
        if self.mouse_wrap != 0 {
            if val == command::RESET_WRAP {
                self.mouse_wrap = 0;
                self.queue(&[ACK], irq);
                return;
            } else if val != command::RESET {
                self.queue(&[val], irq);
                return;
            }
        }
        match val {
            command::SET_SCALE11 => {
                self.mouse_status &= !status::SCALE21;
                self.queue(&[ACK], irq);
            }
            command::SET_SCALE21 => {
                self.mouse_status |= status::SCALE21;
                self.queue(&[ACK], irq);
            }
            command::SET_STREAM => {
                self.mouse_status &= !status::REMOTE;
                self.queue(&[ACK], irq);
            }
            command::SET_WRAP => {
                self.mouse_wrap = 1;
                self.queue(&[ACK], irq);
            }
            command::SET_REMOTE => {
                self.mouse_status |= status::REMOTE;
                self.queue(&[ACK], irq);
            }
            command::GET_TYPE => self.queue(&[ACK, self.mouse_type], irq),
            command::SET_RES | command::SET_SAMPLE => {
                self.parent_obj.set_write_cmd(i32::from(val));
                self.queue(&[ACK], irq);
            }
            command::GET_SCALE => {
                let reply = [
                    ACK,
                    self.mouse_status,
                    self.mouse_resolution,
                    self.mouse_sample_rate,
                ];
                self.queue(&reply, irq);
            }
            command::POLL => {
                self.queue(&[ACK], irq);
                self.send_packet(irq);
            }
            command::ENABLE_DEV => {
                self.mouse_status |= status::ENABLED;
                self.queue(&[ACK], irq);
            }
            command::DISABLE_DEV => {
                self.mouse_status &= !status::ENABLED;
                self.queue(&[ACK], irq);
            }
            command::SET_DEFAULT => {
                self.mouse_sample_rate = 100;
                self.mouse_resolution = 2;
                self.mouse_status = 0;
                self.queue(&[ACK], irq);
            }
            command::RESET => {
                self.mouse_sample_rate = 100;
                self.mouse_resolution = 2;
                self.mouse_status = 0;
                self.mouse_type = 0;
                self.parent_obj.reset_queue();
                self.queue(&[ACK, 0xaa, self.mouse_type], irq);
            }
            _ => {}
        }
    }

    /// Queues one movement packet if it fits (QEMU `ps2_mouse_send_packet`):
    /// 3 bytes, or 4 with a wheel byte for ids 3 and 4. Reported deltas are
    /// subtracted; the rest stays for the next packet. Returns whether a packet
    /// was queued.
    fn send_packet(&mut self, irq: &mut dyn FnMut(bool)) -> bool {
        let needed = if self.mouse_type != 0 { 4 } else { 3 };
        if !self.parent_obj.has_room(needed) {
            return false;
        }
        let dx = self.mouse_dx.clamp(-127, 127);
        let dy = self.mouse_dy.clamp(-127, 127);
        let head =
            0x08 | (u8::from(dx < 0) << 4) | (u8::from(dy < 0) << 5) | (self.mouse_buttons & 0x07);
        let q = &mut self.parent_obj;
        q.push_noirq(head);
        q.push_noirq(dx as u8);
        q.push_noirq(dy as u8);
        match self.mouse_type {
            3 => {
                let dz = self.mouse_dz.clamp(-127, 127);
                q.push_noirq(dz as u8);
                self.mouse_dz -= dz;
                self.mouse_dw = 0;
            }
            4 => {
                let extra = if self.mouse_dw != 0 {
                    let dw = self.mouse_dw.clamp(-31, 31);
                    self.mouse_dw -= dw;
                    (dw as u8 & 0x3f) | 0x40
                } else {
                    let dz = self.mouse_dz.clamp(-7, 7);
                    self.mouse_dz -= dz;
                    (dz as u8 & 0x0f) | ((self.mouse_buttons & 0x18) << 1)
                };
                q.push_noirq(extra);
            }
            // Wheels are dropped when the protocol has no place for them.
            _ => {
                self.mouse_dz = 0;
                self.mouse_dw = 0;
            }
        }
        irq(true);
        self.mouse_dx -= dx;
        self.mouse_dy -= dy;
        true
    }

    /// Relative movement from the host (recorded only while enabled). `Y` is
    /// host-down-positive and is stored inverted, as the packet reports up.
    pub fn relative_move(&mut self, axis: Axis, value: i32) {
        if !self.enabled() {
            return;
        }
        match axis {
            Axis::X => self.mouse_dx = self.mouse_dx.wrapping_add(value),
            Axis::Y => self.mouse_dy = self.mouse_dy.wrapping_sub(value),
        }
    }

    /// A button or wheel event from the host (recorded only while enabled).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::MouseButton, Ps2Mouse};
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf4, &mut |_| {});
    /// mouse.button(MouseButton::Left, true);
    /// assert_eq!(mouse.buttons(), 0x01);
    /// ```
    pub fn button(&mut self, button: MouseButton, down: bool) {
        if !self.enabled() {
            return;
        }
        if !down {
            self.mouse_buttons &= !button.bit();
            return;
        }
        self.mouse_buttons |= button.bit();
        match button {
            MouseButton::WheelUp => self.mouse_dz = self.mouse_dz.wrapping_sub(1),
            MouseButton::WheelDown => self.mouse_dz = self.mouse_dz.wrapping_add(1),
            MouseButton::WheelRight => self.mouse_dw = self.mouse_dw.wrapping_sub(1),
            MouseButton::WheelLeft => self.mouse_dw = self.mouse_dw.wrapping_add(1),
            _ => {}
        }
    }

    /// End of a batch of host events: in stream mode, queue packets until the
    /// accumulated motion is reported or the queue is full (QEMU `ps2_mouse_sync`).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::Axis, Ps2Mouse};
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf4, &mut |_| {}); // enable: ACK queued
    /// mouse.relative_move(Axis::X, 300);
    /// mouse.sync(&mut |_| {});
    /// assert_eq!(mouse.common().queued(), [0xfa, 0x08, 127, 0, 0x08, 127, 0, 0x08, 46, 0]);
    /// ```
    pub fn sync(&mut self, irq: &mut dyn FnMut(bool)) {
        if !self.enabled() {
            return;
        }
        if self.mouse_status & status::REMOTE != 0 {
            return;
        }
        while self.send_packet(irq) {
            if self.mouse_dx == 0 && self.mouse_dy == 0 && self.mouse_dz == 0 && self.mouse_dw == 0
            {
                break;
            }
        }
    }

    /// One count of movement to the right, synced (QEMU's fake event, used by
    /// vmmouse to wake the guest driver).
    pub fn fake_event(&mut self, irq: &mut dyn FnMut(bool)) {
        self.mouse_dx = self.mouse_dx.wrapping_add(1);
        self.sync(irq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(m: &mut Ps2Mouse, bytes: &[u8]) -> Vec<u8> {
        for &b in bytes {
            m.write(b, &mut |_| {});
        }
        let mut out = Vec::new();
        while !m.common().is_empty() {
            out.push(m.read(&mut |_| {}));
        }
        out
    }

    #[test]
    fn settings_and_status_request() {
        let mut m = Ps2Mouse::default();
        assert_eq!(send(&mut m, &[0xff]), [ACK, 0xaa, 0]);
        assert_eq!(send(&mut m, &[0xe8, 3, 0xf3, 40, 0xe7, 0xf0]), [ACK; 6]);
        assert_eq!(send(&mut m, &[0xe9]), [ACK, 0x50, 3, 40]);
        assert_eq!(
            send(&mut m, &[0xe6, 0xea, 0xf4, 0xe9]),
            [ACK, ACK, ACK, ACK, 0x20, 3, 40]
        );
        assert_eq!(send(&mut m, &[0xf6, 0xe9]), [ACK, ACK, 0, 2, 100]);
        assert_eq!(send(&mut m, &[0xf5, 0x12]), [ACK]); // unknown: ignored
    }

    #[test]
    fn intellimouse_and_explorer_detection() {
        let mut m = Ps2Mouse::default();
        send(&mut m, &[0xf3, 200, 0xf3, 100, 0xf3, 80]);
        assert_eq!(send(&mut m, &[0xf2]), [ACK, 3]);
        send(&mut m, &[0xf3, 200, 0xf3, 200, 0xf3, 80]);
        assert_eq!(send(&mut m, &[0xf2]), [ACK, 4]);
        // A broken knock does not change the id; reset clears it.
        send(&mut m, &[0xf3, 200, 0xf3, 60, 0xf3, 80]);
        assert_eq!(m.mouse_type(), 4);
        assert_eq!(send(&mut m, &[0xff]), [ACK, 0xaa, 0]);
        assert_eq!(m.mouse_type(), 0);
    }

    #[test]
    fn wrap_mode_echoes() {
        let mut m = Ps2Mouse::default();
        assert_eq!(
            send(&mut m, &[0xee, 0x12, 0xf4, 0xec, 0xf2]),
            [ACK, 0x12, 0xf4, ACK, ACK, 0]
        );
        assert!(!m.wrap());
    }

    #[test]
    fn packets_in_stream_remote_and_wheel_modes() {
        let mut m = Ps2Mouse::default();
        send(&mut m, &[0xf4]);
        m.relative_move(Axis::X, -5);
        m.relative_move(Axis::Y, 3); // host down → packet negative
        m.button(MouseButton::Left, true);
        m.button(MouseButton::WheelUp, true);
        m.sync(&mut |_| {});
        assert_eq!(send(&mut m, &[]), [0x39, 0xfb, 0xfd]);
        assert_eq!(m.pending_motion(), (0, 0, 0, 0)); // wheel dropped for id 0
                                                      // IntelliMouse: 4-byte packets with the wheel.
        send(&mut m, &[0xf3, 200, 0xf3, 100, 0xf3, 80]);
        m.button(MouseButton::WheelDown, true);
        m.sync(&mut |_| {});
        assert_eq!(send(&mut m, &[]), [0x09, 0, 0, 1]);
        // Remote mode: nothing until polled.
        send(&mut m, &[0xf0]);
        m.relative_move(Axis::X, 2);
        m.sync(&mut |_| {});
        assert!(m.common().is_empty());
        assert_eq!(send(&mut m, &[0xeb]), [ACK, 0x09, 2, 0, 0]);
    }

    #[test]
    fn explorer_buttons_and_horizontal_wheel() {
        let mut m = Ps2Mouse::default();
        send(&mut m, &[0xf3, 200, 0xf3, 200, 0xf3, 80, 0xf4]);
        m.button(MouseButton::Side, true);
        m.button(MouseButton::WheelUp, true);
        m.sync(&mut |_| {});
        assert_eq!(send(&mut m, &[]), [0x08, 0, 0, 0x1f]);
        m.button(MouseButton::WheelLeft, true);
        m.sync(&mut |_| {});
        assert_eq!(send(&mut m, &[]), [0x08, 0, 0, 0x41]);
    }

    #[test]
    fn disabled_mouse_ignores_input_and_full_queue_stops_packets() {
        let mut m = Ps2Mouse::default();
        m.relative_move(Axis::X, 10);
        m.sync(&mut |_| {});
        assert!(m.common().is_empty());
        send(&mut m, &[0xf4]);
        m.relative_move(Axis::X, 127 * 10);
        m.sync(&mut |_| {});
        assert_eq!(m.common().len(), 15); // five 3-byte packets fit in 16
        assert_eq!(m.pending_motion().0, 127 * 5);
    }
}
