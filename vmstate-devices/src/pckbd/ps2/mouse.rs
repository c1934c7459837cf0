//! The PS/2 mouse's state and its migration: section "ps2mouse", version 2. The
//! protocol (commands, movement, packets) is in `mouse_protocol.rs`.

use vmstate_runtime::VmState;

use super::queue::Ps2Common;

/// A PS/2 mouse (QEMU device `ps2-mouse`, section "ps2mouse" version 2),
/// including IntelliMouse (wheel, id 3) and IntelliMouse Explorer (5 buttons,
/// id 4) detection.
///
/// [`Default`] is the state after reset: disabled, stream mode, all settings 0,
/// empty queue.
///
/// ```
/// use vmstate_runtime::to_bytes;
/// use vmstate_devices::pckbd::Ps2Mouse;
///
/// let mut mouse = Ps2Mouse::default();
/// for b in [0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2] {
///     mouse.write(b, &mut |_| {});
/// }
/// assert_eq!(mouse.mouse_type(), 3); // IntelliMouse
/// assert_eq!(to_bytes(&mouse)?.len(), 291);
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
#[derive(VmState, Clone, Debug, Default, PartialEq, Eq)]
#[vmstate(name = "ps2mouse", version = 2, minimum_version = 2, post_load = Self::post_load)]
pub struct Ps2Mouse {
    /// The common PS/2 state ("PS2 Common State": command byte and queue).
    pub(super) parent_obj: Ps2Common,
    /// Status byte as reported by 0xe9: 0x40 remote mode, 0x20 enabled, 0x10
    /// 2:1 scaling, low bits the buttons.
    pub(super) mouse_status: u8,
    /// Resolution code (0..=3: 1, 2, 4, 8 counts/mm).
    pub(super) mouse_resolution: u8,
    /// Samples per second.
    pub(super) mouse_sample_rate: u8,
    /// Wrap (echo) mode.
    pub(super) mouse_wrap: u8,
    /// Device id: 0 standard, 3 IntelliMouse, 4 IntelliMouse Explorer.
    pub(super) mouse_type: u8,
    /// Progress through the 200,100,80 / 200,200,80 sample-rate knock.
    pub(super) mouse_detect_state: u8,
    /// Accumulated movement not yet reported (x right, y up).
    pub(super) mouse_dx: i32,
    pub(super) mouse_dy: i32,
    /// Accumulated vertical wheel movement.
    pub(super) mouse_dz: i32,
    /// Buttons held: bit 0 left, 1 right, 2 middle, 3 side, 4 extra.
    pub(super) mouse_buttons: u8,
    /// Accumulated horizontal wheel movement (Explorer only); not migrated, as in QEMU.
    #[vmstate(skip)]
    pub(super) mouse_dw: i32,
}

impl Ps2Mouse {
    /// QEMU's `ps2_mouse_post_load`: sanitise the queue.
    fn post_load(&mut self, _version_id: u32) -> Result<(), vmstate_runtime::Error> {
        self.parent_obj.sanitize();
        Ok(())
    }
}

/// Read-only views of the state.
impl Ps2Mouse {
    /// The common PS/2 state (pending command, queue).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf2, &mut |_| {}); // get device id
    /// assert_eq!(mouse.common().queued(), [0xfa, 0x00]);
    /// ```
    pub fn common(&self) -> &Ps2Common {
        &self.parent_obj
    }

    /// The status byte (0x40 remote, 0x20 enabled, 0x10 2:1 scaling).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::mouse_status as status, Ps2Mouse};
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf0, &mut |_| {}); // remote mode
    /// mouse.write(0xf4, &mut |_| {}); // enable
    /// assert_eq!(mouse.status(), status::REMOTE | status::ENABLED);
    /// ```
    pub fn status(&self) -> u8 {
        self.mouse_status
    }

    /// Whether the mouse reports movement (0xf4 given).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// assert!(!mouse.enabled());
    /// mouse.write(0xf4, &mut |_| {});
    /// assert!(mouse.enabled());
    /// mouse.write(0xf5, &mut |_| {});
    /// assert!(!mouse.enabled());
    /// ```
    pub fn enabled(&self) -> bool {
        self.mouse_status & super::mouse_protocol::status::ENABLED != 0
    }

    /// The resolution code.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xe8, &mut |_| {}); // set resolution ...
    /// mouse.write(0x02, &mut |_| {}); // ... 4 counts/mm
    /// assert_eq!(mouse.resolution(), 2);
    /// ```
    pub fn resolution(&self) -> u8 {
        self.mouse_resolution
    }

    /// The sample rate.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf3, &mut |_| {}); // set sample rate ...
    /// mouse.write(40, &mut |_| {});
    /// assert_eq!(mouse.sample_rate(), 40);
    /// ```
    pub fn sample_rate(&self) -> u8 {
        self.mouse_sample_rate
    }

    /// Whether wrap (echo) mode is on.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xee, &mut |_| {}); // wrap mode
    /// assert!(mouse.wrap());
    /// mouse.write(0xec, &mut |_| {}); // leave it
    /// assert!(!mouse.wrap());
    /// ```
    pub fn wrap(&self) -> bool {
        self.mouse_wrap != 0
    }

    /// The device id: 0, 3 (IntelliMouse) or 4 (Explorer).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// // The IntelliMouse knock: sample rates 200, 100, 80.
    /// for rate in [200, 100, 80] {
    ///     mouse.write(0xf3, &mut |_| {});
    ///     mouse.write(rate, &mut |_| {});
    /// }
    /// assert_eq!(mouse.mouse_type(), 3);
    /// ```
    pub fn mouse_type(&self) -> u8 {
        self.mouse_type
    }

    /// Movement and wheel not yet reported: (dx, dy, dz, dw).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::Axis, Ps2Mouse};
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf0, &mut |_| {}); // remote mode: motion waits for a poll
    /// mouse.write(0xf4, &mut |_| {});
    /// mouse.relative_move(Axis::X, 7);
    /// mouse.relative_move(Axis::Y, 2); // host down is packet down
    /// mouse.sync(&mut |_| {});
    /// assert_eq!(mouse.pending_motion(), (7, -2, 0, 0));
    /// ```
    pub fn pending_motion(&self) -> (i32, i32, i32, i32) {
        (self.mouse_dx, self.mouse_dy, self.mouse_dz, self.mouse_dw)
    }

    /// Buttons held (bit 0 left, 1 right, 2 middle, 3 side, 4 extra).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{ps2::MouseButton, Ps2Mouse};
    ///
    /// let mut mouse = Ps2Mouse::default();
    /// mouse.write(0xf4, &mut |_| {});
    /// mouse.button(MouseButton::Left, true);
    /// mouse.button(MouseButton::Middle, true);
    /// assert_eq!(mouse.buttons(), 0x05);
    /// ```
    pub fn buttons(&self) -> u8 {
        self.mouse_buttons
    }
}
