//! The ISA i8042 device: ports 0x60/0x64, the controller command set, and the
//! wiring between the controller and its PS/2 keyboard and mouse.

use vmstate_runtime::VmState;

use super::controller::{IrqLine, KbdState};
use super::ps2::{Axis, KeyCode, MouseButton, Ps2Keyboard, Ps2Mouse};
use super::regs::{command, mode, obsrc, outport, status, DATA_PORT, STATUS_PORT};

/// Device properties (QEMU `-device i8042,...`).
///
/// ```
/// use vmstate_devices::pckbd::{I8042, I8042Config};
/// // The i8042 of a pc-i440fx-6.0 (or older) machine type.
/// let old = I8042::new(I8042Config { extended_state: false, kbd_throttle: false });
/// assert_eq!(vmstate_runtime::to_bytes(&old)?, [0x00, 0x18, 0x03, 0x00]);
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I8042Config {
    /// Migrate the output-buffer state ("pckbd/extended_state"); QEMU's default is
    /// on, off for machine types up to 6.0.
    pub extended_state: bool,
    /// Offer keyboard bytes at most once per millisecond of device time. Requires
    /// `extended_state` (silently off without it, as QEMU does with a warning).
    pub kbd_throttle: bool,
}

impl Default for I8042Config {
    /// The `pc` machine's i8042: extended state on, no throttling.
    fn default() -> Self {
        I8042Config {
            extended_state: true,
            kbd_throttle: false,
        }
    }
}

/// Something the controller asked of the machine.
///
/// ```
/// use vmstate_devices::pckbd::{I8042, I8042Event};
/// let mut ctl = I8042::default();
/// ctl.write_port(0x64, 0xdd); // gate A20 off
/// ctl.write_port(0x64, 0xfe); // pulse the reset line
/// assert_eq!(ctl.take_events(), [I8042Event::A20(false), I8042Event::SystemReset]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I8042Event {
    /// The guest pulsed the reset line (0xfe, 0xf0..=0xfe with bit 0 clear, or an
    /// output-port write with bit 0 clear): the machine should reset.
    SystemReset,
    /// The gate-A20 output was driven to this level.
    A20(bool),
}

/// The PC keyboard controller with its PS/2 keyboard and mouse (QEMU ISA device
/// `i8042`, section "pckbd" version 3).
///
/// Its own migration state is the controller registers only, as the nested
/// struct field `kbd` ("pckbd"); the keyboard and mouse are separate sections
/// ("ps2kbd", "ps2mouse"), saved and loaded through [`keyboard`](Self::keyboard)
/// / [`keyboard_mut`](Self::keyboard_mut) and [`mouse`](Self::mouse) /
/// [`mouse_mut`](Self::mouse_mut).
///
/// [`Default`] is the device right after reset in a fresh QEMU `pc` machine.
///
/// ```
/// use vmstate_runtime::to_bytes;
/// use vmstate_devices::pckbd::{I8042, KeyCode};
///
/// let mut ctl = I8042::default();
/// ctl.write_port(0x64, 0xaa);                 // self test
/// assert_eq!(ctl.read_port(0x64) & 0x01, 1);  // output buffer full
/// assert_eq!(ctl.read_port(0x60), 0x55);
///
/// ctl.key_event(KeyCode::A, true);
/// assert!(ctl.irq_kbd().level);               // IRQ 1 raised
/// assert_eq!(ctl.read_port(0x60), 0x1c);      // set 2 make code
///
/// let mut fresh = b"\x00\x18\x03\x00\x05\x14pckbd/extended_state".to_vec();
/// fresh.extend_from_slice(&[0; 14]);
/// assert_eq!(to_bytes(&I8042::default())?, fresh);
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
#[derive(VmState, Clone, Debug, PartialEq, Eq)]
#[vmstate(name = "pckbd", version = 3, minimum_version = 3)]
pub struct I8042 {
    /// The controller (QEMU `ISAKBDState.kbd`).
    kbd: KbdState,
    /// The keyboard on the first port (its own section "ps2kbd").
    #[vmstate(skip)]
    keyboard: Ps2Keyboard,
    /// The mouse on the auxiliary port (its own section "ps2mouse").
    #[vmstate(skip)]
    mouse: Ps2Mouse,
    /// Device clock (ns), as last given to [`advance_time`](Self::advance_time).
    #[vmstate(skip)]
    now_ns: u64,
    /// Requests not yet collected by [`take_events`](Self::take_events).
    #[vmstate(skip)]
    events: Vec<I8042Event>,
}

impl Default for I8042 {
    fn default() -> Self {
        I8042::new(I8042Config::default())
    }
}

impl I8042 {
    /// A controller with the given properties, after reset.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Config};
    ///
    /// let ctl = I8042::new(I8042Config { extended_state: false, kbd_throttle: true });
    /// // Throttling needs extended state: it is silently off without it.
    /// assert!(!ctl.controller().extended_state());
    /// assert!(!ctl.controller().kbd_throttle());
    /// assert_eq!(ctl, I8042::new(I8042Config { extended_state: false, kbd_throttle: false }));
    /// ```
    pub fn new(config: I8042Config) -> Self {
        let mut dev = I8042 {
            kbd: KbdState::new(config.extended_state, config.kbd_throttle),
            keyboard: Ps2Keyboard::default(),
            mouse: Ps2Mouse::default(),
            now_ns: 0,
            events: Vec::new(),
        };
        dev.reset();
        dev
    }

    /// Machine reset of the controller and both PS/2 devices.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, KeyCode};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_port(0x64, 0xdd); // A20 off
    /// ctl.key_event(KeyCode::A, true);
    /// ctl.reset();
    /// assert!(ctl.a20_enabled());
    /// assert!(ctl.keyboard().common().is_empty());
    /// assert_eq!(ctl.read_status() & 0x01, 0); // nothing to read
    /// ```
    pub fn reset(&mut self) {
        let kbd = &mut self.kbd;
        self.keyboard.reset(&mut |l| kbd.kbd_input(l));
        self.mouse.reset(&mut |l| kbd.aux_input(l));
        self.kbd.reset();
    }

    /// Reads an I/O port: 0x60 data, 0x64 status; other ports read 0xff.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert_eq!(ctl.read_port(0x64), 0x18); // status after reset
    /// ctl.write_port(0x64, 0x20);            // read command byte
    /// assert_eq!(ctl.read_port(0x60), 0x03);
    /// assert_eq!(ctl.read_port(0x61), 0xff); // not an i8042 port
    /// ```
    pub fn read_port(&mut self, port: u16) -> u8 {
        match port {
            DATA_PORT => self.read_data(),
            STATUS_PORT => self.read_status(),
            _ => 0xff,
        }
    }

    /// Writes an I/O port: 0x60 data, 0x64 command; other ports are ignored.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_port(0x64, 0x60); // "write command byte" ...
    /// ctl.write_port(0x60, 0x01); // ... keyboard interrupt only, no translation
    /// assert_eq!(ctl.controller().mode(), 0x01);
    /// ctl.write_port(0x80, 0x55); // ignored
    /// assert_eq!(ctl.controller().mode(), 0x01);
    /// ```
    pub fn write_port(&mut self, port: u16, val: u8) {
        match port {
            DATA_PORT => self.write_data(val),
            STATUS_PORT => self.write_command(val),
            _ => {}
        }
    }

    /// The status register (port 0x64 read).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert_eq!(ctl.read_status() & 0x01, 0); // output buffer empty
    /// ctl.write_command(0xaa);                 // self test
    /// assert_eq!(ctl.read_status() & 0x01, 1); // reply waiting
    /// assert_eq!(ctl.read_status(), ctl.read_port(0x64));
    /// ```
    pub fn read_status(&self) -> u8 {
        self.kbd.status
    }

    /// The output buffer (port 0x60 read). When it is full, the byte is taken
    /// from its source and the next pending source gets the buffer; when it is
    /// empty, the last byte is returned again.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd2); // write the keyboard output buffer
    /// ctl.write_data(0x42);
    /// assert_eq!(ctl.read_data(), 0x42);
    /// // Empty now: the last byte is read again.
    /// assert_eq!(ctl.read_status() & 0x01, 0);
    /// assert_eq!(ctl.read_data(), 0x42);
    /// ```
    pub fn read_data(&mut self) -> u8 {
        let kbd = &mut self.kbd;
        if kbd.status & status::OBF != 0 {
            kbd.deassert_irq();
            let src = kbd.ext.obsrc;
            if src & obsrc::KBD != 0 {
                kbd.arm_throttle(self.now_ns);
                kbd.ext.obdata = self.keyboard.read(&mut |l| kbd.kbd_input(l));
            } else if src & obsrc::MOUSE != 0 {
                kbd.ext.obdata = self.mouse.read(&mut |l| kbd.aux_input(l));
            } else if src & obsrc::CTRL != 0 {
                kbd.ext.obdata = kbd.dequeue_ctrl();
            }
        }
        self.kbd.ext.obdata
    }

    /// A controller command (port 0x64 write).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Event};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xad); // disable the keyboard interface
    /// assert_eq!(ctl.controller().mode() & 0x10, 0x10);
    /// ctl.write_command(0xae); // enable it again
    /// assert_eq!(ctl.controller().mode() & 0x10, 0);
    /// ctl.write_command(0xdd); // gate A20 off
    /// assert!(!ctl.a20_enabled());
    /// assert_eq!(ctl.take_events(), [I8042Event::A20(false)]);
    /// ```
    pub fn write_command(&mut self, val: u8) {
        // 0xf0..=0xff pulse output-port bits; only the reset line does anything.
        let val = if val & command::PULSE_BITS_3_0 == command::PULSE_BITS_3_0 {
            if val & 1 == 0 {
                command::RESET
            } else {
                command::NO_OP
            }
        } else {
            val
        };
        let kbd = &mut self.kbd;
        match val {
            command::READ_MODE => self.controller_reply(self.kbd.mode, false),
            command::WRITE_MODE
            | command::WRITE_OBUF
            | command::WRITE_AUX_OBUF
            | command::WRITE_MOUSE
            | command::WRITE_OUTPORT => kbd.write_cmd = val,
            command::MOUSE_DISABLE => kbd.mode |= mode::DISABLE_MOUSE,
            command::MOUSE_ENABLE => {
                kbd.mode &= !mode::DISABLE_MOUSE;
                kbd.safe_update_irq();
            }
            command::TEST_MOUSE | command::KBD_TEST => self.controller_reply(0x00, false),
            command::SELF_TEST => {
                kbd.status |= status::SELFTEST;
                self.controller_reply(0x55, false);
            }
            command::KBD_DISABLE => kbd.mode |= mode::DISABLE_KBD,
            command::KBD_ENABLE => {
                kbd.mode &= !mode::DISABLE_KBD;
                kbd.safe_update_irq();
            }
            command::READ_INPORT => self.controller_reply(0x80, false),
            command::READ_OUTPORT => self.controller_reply(self.kbd.outport.outport, false),
            command::ENABLE_A20 => {
                kbd.outport.outport |= outport::A20;
                self.events.push(I8042Event::A20(true));
            }
            command::DISABLE_A20 => {
                kbd.outport.outport &= !outport::A20;
                self.events.push(I8042Event::A20(false));
            }
            command::RESET => self.events.push(I8042Event::SystemReset),
            // NO_OP, GET_VERSION and unknown commands: ignored (QEMU logs them).
            _ => {}
        }
    }

    /// A data byte (port 0x60 write): the argument of a pending controller
    /// command, or else a byte for the keyboard.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    /// let mut ctl = I8042::default();
    /// ctl.write_data(0xf2); // to the keyboard: identify
    /// assert_eq!([ctl.read_data(), ctl.read_data(), ctl.read_data()], [0xfa, 0xab, 0x83]);
    /// ctl.write_command(0xd4); // next data byte to the mouse
    /// ctl.write_data(0xf2);
    /// assert_eq!([ctl.read_data(), ctl.read_data()], [0xfa, 0x00]);
    /// ```
    pub fn write_data(&mut self, val: u8) {
        let kbd = &mut self.kbd;
        match kbd.write_cmd {
            0 => {
                self.keyboard.write(val, &mut |l| kbd.kbd_input(l));
                // Talking to the keyboard re-enables its interface.
                kbd.mode &= !mode::DISABLE_KBD;
                kbd.safe_update_irq();
            }
            command::WRITE_MODE => {
                kbd.mode = val;
                self.keyboard.set_translation(val & mode::KCC != 0);
                // The interrupt-enable bits act on the lines at once; clearing a
                // disable bit may hand the buffer to waiting data.
                kbd.update_irq_lines();
                kbd.safe_update_irq();
            }
            command::WRITE_OBUF => self.controller_reply(val, false),
            command::WRITE_AUX_OBUF => self.controller_reply(val, true),
            command::WRITE_OUTPORT => self.write_outport(val),
            command::WRITE_MOUSE => {
                self.mouse.write(val, &mut |l| kbd.aux_input(l));
                // Talking to the mouse re-enables its interface.
                kbd.mode &= !mode::DISABLE_MOUSE;
                kbd.safe_update_irq();
            }
            _ => {}
        }
        self.kbd.write_cmd = 0;
    }

    /// A byte produced by the controller itself: in `cbdata` with extended state,
    /// otherwise queued in the keyboard's or mouse's own queue (pre-6.1 behaviour).
    fn controller_reply(&mut self, b: u8, aux: bool) {
        let kbd = &mut self.kbd;
        if kbd.extended_state {
            kbd.queue_ctrl(b, aux);
        } else if aux {
            self.mouse.queue_byte(b, &mut |l| kbd.aux_input(l));
        } else {
            self.keyboard.queue_byte(b, &mut |l| kbd.kbd_input(l));
        }
    }

    fn write_outport(&mut self, val: u8) {
        self.kbd.outport.outport = val;
        self.events.push(I8042Event::A20(val & outport::A20 != 0));
        if val & outport::RESET == 0 {
            self.events.push(I8042Event::SystemReset);
        }
    }

    /// Advances the device clock to `now_ns` and fires the keyboard throttle
    /// timer if it has expired.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Config, KeyCode};
    /// let mut ctl = I8042::new(I8042Config { extended_state: true, kbd_throttle: true });
    /// ctl.key_event(KeyCode::A, true);
    /// ctl.key_event(KeyCode::A, false);
    /// assert_eq!(ctl.read_port(0x60), 0x1c);
    /// assert_eq!(ctl.read_port(0x64) & 1, 0); // next byte held back for 1 ms
    /// ctl.advance_time(1_000_000);
    /// assert_eq!(ctl.read_port(0x64) & 1, 1);
    /// ```
    pub fn advance_time(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        if let Some(deadline) = self.kbd.throttle_deadline {
            if deadline <= self.now_ns {
                self.kbd.throttle_timeout();
            }
        }
    }

    /// The device clock (ns).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert_eq!(ctl.now(), 0);
    /// ctl.advance_time(5_000);
    /// ctl.advance_time(1_000); // the clock never goes back
    /// assert_eq!(ctl.now(), 5_000);
    /// ```
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// Collects the reset / A20 requests made since the last call.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Event};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd1); // write output port ...
    /// ctl.write_data(0x00);    // ... A20 off and reset line low
    /// assert_eq!(ctl.take_events(), [I8042Event::A20(false), I8042Event::SystemReset]);
    /// assert!(ctl.take_events().is_empty()); // collected
    /// ```
    pub fn take_events(&mut self) -> Vec<I8042Event> {
        std::mem::take(&mut self.events)
    }
}

/// Host input: keys and mouse, delivered through the PS/2 devices so the
/// controller sees their interrupts.
impl I8042 {
    /// A key press or release.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, KeyCode};
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0x60);
    /// ctl.write_data(0x43); // interrupts on, translation to set 1
    /// ctl.key_event(KeyCode::Esc, true);
    /// ctl.key_event(KeyCode::Esc, false);
    /// assert_eq!([ctl.read_data(), ctl.read_data()], [0x01, 0x81]);
    /// ```
    pub fn key_event(&mut self, key: KeyCode, down: bool) {
        let kbd = &mut self.kbd;
        self.keyboard
            .key_event(key, down, &mut |l| kbd.kbd_input(l));
    }

    /// One raw scancode byte of the keyboard's current set (translated if the
    /// controller translates).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0x60);
    /// ctl.write_data(0x43);  // interrupts on, translation to set 1
    /// ctl.put_keycode(0x1c); // set-2 'a' ...
    /// assert_eq!(ctl.read_data(), 0x1e); // ... translated to set-1 'a'
    /// ```
    pub fn put_keycode(&mut self, code: u8) {
        let kbd = &mut self.kbd;
        self.keyboard.put_keycode(code, &mut |l| kbd.kbd_input(l));
    }

    /// Relative mouse movement (reported at the next [`mouse_sync`](Self::mouse_sync)).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::Axis, I8042};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd4);
    /// ctl.write_data(0xf4); // mouse: enable reporting
    /// assert_eq!(ctl.read_data(), 0xfa);
    /// ctl.mouse_move(Axis::X, 5);
    /// ctl.mouse_move(Axis::Y, -3); // host up
    /// assert_eq!(ctl.mouse().pending_motion(), (5, 3, 0, 0));
    /// ```
    pub fn mouse_move(&mut self, axis: Axis, value: i32) {
        self.mouse.relative_move(axis, value);
    }

    /// A mouse button or wheel step.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::MouseButton, I8042};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd4);
    /// ctl.write_data(0xf4); // mouse: enable reporting
    /// ctl.read_data();
    /// ctl.mouse_button(MouseButton::Right, true);
    /// assert_eq!(ctl.mouse().buttons(), 0x02);
    /// ctl.mouse_button(MouseButton::Right, false);
    /// assert_eq!(ctl.mouse().buttons(), 0);
    /// ```
    pub fn mouse_button(&mut self, button: MouseButton, down: bool) {
        self.mouse.button(button, down);
    }

    /// End of a batch of mouse events: packets are queued (stream mode).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::{Axis, MouseButton}, I8042};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd4);
    /// ctl.write_data(0xf4); // mouse: enable reporting
    /// ctl.read_data();
    /// ctl.mouse_button(MouseButton::Left, true);
    /// ctl.mouse_move(Axis::X, 4);
    /// ctl.mouse_sync();
    /// assert!(ctl.irq_mouse().level);
    /// assert_eq!([ctl.read_data(), ctl.read_data(), ctl.read_data()], [0x09, 4, 0]);
    /// ```
    pub fn mouse_sync(&mut self) {
        let kbd = &mut self.kbd;
        self.mouse.sync(&mut |l| kbd.aux_input(l));
    }

    /// One count of movement, synced (used by vmmouse to wake the guest).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd4);
    /// ctl.write_data(0xf4); // mouse: enable reporting
    /// ctl.read_data();
    /// ctl.mouse_fake_event();
    /// assert_eq!([ctl.read_data(), ctl.read_data(), ctl.read_data()], [0x08, 1, 0]);
    /// ```
    pub fn mouse_fake_event(&mut self) {
        let kbd = &mut self.kbd;
        self.mouse.fake_event(&mut |l| kbd.aux_input(l));
    }
}

/// Observation and access to the parts.
impl I8042 {
    /// The controller registers.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd3); // next data byte goes to the mouse output buffer
    /// assert_eq!(ctl.controller().write_cmd(), 0xd3);
    /// ```
    pub fn controller(&self) -> &KbdState {
        &self.kbd
    }

    /// IRQ 1 (keyboard).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, KeyCode};
    ///
    /// let mut ctl = I8042::default();
    /// assert!(!ctl.irq_kbd().level);
    /// ctl.key_event(KeyCode::Z, true);
    /// assert!(ctl.irq_kbd().level);
    /// ctl.read_data();
    /// assert!(!ctl.irq_kbd().level);
    /// assert_eq!(ctl.irq_kbd().rising_edges, 1);
    /// ```
    pub fn irq_kbd(&self) -> IrqLine {
        self.kbd.irq_kbd
    }

    /// IRQ 12 (mouse).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xd3); // write the mouse output buffer
    /// ctl.write_data(0x01);
    /// assert!(ctl.irq_mouse().level);
    /// assert!(!ctl.irq_kbd().level);
    /// ```
    pub fn irq_mouse(&self) -> IrqLine {
        self.kbd.irq_mouse
    }

    /// Whether gate A20 is enabled (output port bit 1).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert!(ctl.a20_enabled());
    /// ctl.write_command(0xdd);
    /// assert!(!ctl.a20_enabled());
    /// ctl.write_command(0xdf);
    /// assert!(ctl.a20_enabled());
    /// ```
    pub fn a20_enabled(&self) -> bool {
        self.kbd.outport.outport & outport::A20 != 0
    }

    /// The keyboard (section "ps2kbd").
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert!(!ctl.keyboard().translate());
    /// ctl.write_command(0x60);
    /// ctl.write_data(0x43); // translation on
    /// assert!(ctl.keyboard().translate());
    /// ```
    pub fn keyboard(&self) -> &Ps2Keyboard {
        &self.keyboard
    }

    /// The keyboard, e.g. to load its section into. Driving it directly bypasses
    /// the controller's interrupt wiring; use the `I8042` methods for that.
    ///
    /// ```
    /// use vmstate_runtime::{to_bytes, wire::Reader, VmState};
    /// use vmstate_devices::pckbd::{I8042, KeyCode};
    ///
    /// let mut src = I8042::default();
    /// src.key_event(KeyCode::B, true);
    /// let section = to_bytes(src.keyboard())?;
    ///
    /// let mut dst = I8042::default();
    /// dst.keyboard_mut().load(&mut Reader::new(&section[..]), 3)?;
    /// assert_eq!(dst.keyboard(), src.keyboard());
    /// # Ok::<(), vmstate_runtime::Error>(())
    /// ```
    pub fn keyboard_mut(&mut self) -> &mut Ps2Keyboard {
        &mut self.keyboard
    }

    /// The mouse (section "ps2mouse").
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert!(!ctl.mouse().enabled());
    /// ctl.write_command(0xd4);
    /// ctl.write_data(0xf4); // enable reporting
    /// assert!(ctl.mouse().enabled());
    /// ```
    pub fn mouse(&self) -> &Ps2Mouse {
        &self.mouse
    }

    /// The mouse, e.g. to load its section into.
    ///
    /// ```
    /// use vmstate_runtime::{to_bytes, wire::Reader, VmState};
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut src = I8042::default();
    /// src.write_command(0xd4);
    /// src.write_data(0xe8); // set resolution ...
    /// src.write_command(0xd4);
    /// src.write_data(3);    // ... to 8 counts/mm
    /// let section = to_bytes(src.mouse())?;
    ///
    /// let mut dst = I8042::default();
    /// dst.mouse_mut().load(&mut Reader::new(&section[..]), 2)?;
    /// assert_eq!(dst.mouse().resolution(), 3);
    /// # Ok::<(), vmstate_runtime::Error>(())
    /// ```
    pub fn mouse_mut(&mut self) -> &mut Ps2Mouse {
        &mut self.mouse
    }
}

#[cfg(test)]
mod tests;
