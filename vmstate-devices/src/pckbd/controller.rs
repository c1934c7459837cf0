//! The i8042's own state (QEMU's `KBDState`, nested vmsd "pckbd" version 3) and
//! its interrupt logic: which source owns the output buffer, when IRQ 1 / IRQ 12
//! are raised, the pending mask and the keyboard throttle timer.
//!
//! The wire declaration is here; the hooks and subsection types are in
//! `migration.rs`; port I/O and the command set are in `i8042/`.

use vmstate_runtime::VmState;

use super::migration::{ExtendedState, Outport};
use super::regs::{mode, obsrc, outport, pending, status};
use vmstate_runtime::vmstate::SaveComputed;

/// An interrupt output: its level and how many times it went from low to high.
///
/// ```
/// use vmstate_devices::pckbd::I8042;
/// let mut ctl = I8042::default();
/// ctl.write_port(0x64, 0xd3); // write the mouse output buffer ...
/// ctl.write_port(0x60, 0x42);
/// assert!(ctl.irq_mouse().level); // ... raises IRQ 12
/// ctl.read_port(0x60);
/// assert!(!ctl.irq_mouse().level);
/// assert_eq!(ctl.irq_mouse().rising_edges, 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqLine {
    /// Current level.
    pub level: bool,
    /// Low-to-high transitions so far.
    pub rising_edges: u64,
}

impl IrqLine {
    fn set(&mut self, level: bool) {
        if level && !self.level {
            self.rising_edges = self.rising_edges.saturating_add(1);
        }
        self.level = level;
    }
}

/// The controller registers (QEMU `KBDState`, vmsd "pckbd" v3, nested in the
/// ISA device's section as field `kbd`).
///
/// ```
/// use vmstate_devices::pckbd::I8042;
/// let ctl = I8042::default();
/// let kbd = ctl.controller();
/// assert_eq!((kbd.status(), kbd.mode(), kbd.outport()), (0x18, 0x03, 0xcf));
/// ```
#[derive(VmState, Clone, Debug, PartialEq, Eq)]
#[vmstate(
    name = "pckbd",
    version = 3,
    minimum_version = 3,
    pre_save = Self::pre_save,
    pre_load = Self::pre_load,
    post_load = Self::post_load
)]
pub struct KbdState {
    /// Controller command waiting for its data byte at port 0x60 (0: none).
    pub(super) write_cmd: u8,
    /// Status register.
    pub(super) status: u8,
    /// Command byte.
    pub(super) mode: u8,
    /// `pending` as sent: all of it with extended state, else the compat bits only.
    pub(super) pending_tmp: SaveComputed<u8>,
    /// Output port; sent when it differs from what the status implies (e.g. A20 off).
    #[vmstate(subsection(needed = Self::outport_not_default))]
    pub(super) outport: Outport,
    /// Output-buffer source and data, and the throttle flag (QEMU 6.1+).
    #[vmstate(subsection(needed = Self::sends_extended_state))]
    pub(super) ext: ExtendedState,

    /// Sources with data for the output buffer (`regs::pending` bits).
    #[vmstate(skip)]
    pub(super) pending: u8,
    /// The `extended-state` property (true except for machine types <= 6.0).
    #[vmstate(skip)]
    pub(super) extended_state: bool,
    /// The `kbd-throttle` property (needs extended state).
    #[vmstate(skip)]
    pub(super) throttle: bool,
    /// Expiry of the throttle timer (ns of the device clock), when armed.
    #[vmstate(skip)]
    pub(super) throttle_deadline: Option<u64>,
    /// IRQ 1.
    #[vmstate(skip)]
    pub(super) irq_kbd: IrqLine,
    /// IRQ 12.
    #[vmstate(skip)]
    pub(super) irq_mouse: IrqLine,
}

impl KbdState {
    /// A controller with the given properties, in its reset state.
    pub(super) fn new(extended_state: bool, throttle: bool) -> Self {
        let mut s = KbdState {
            write_cmd: 0,
            status: 0,
            mode: 0,
            pending_tmp: SaveComputed::default(),
            outport: Outport::default(),
            ext: ExtendedState::default(),
            pending: 0,
            extended_state,
            // QEMU refuses kbd-throttle without extended-state (with a warning).
            throttle: throttle && extended_state,
            throttle_deadline: None,
            irq_kbd: IrqLine::default(),
            irq_mouse: IrqLine::default(),
        };
        s.reset();
        s
    }

    /// Controller reset (QEMU `kbd_reset`). `write_cmd` and the output-buffer
    /// bookkeeping (`obsrc`, `obdata`, `cbdata`) survive, as in QEMU.
    pub(super) fn reset(&mut self) {
        self.mode = mode::KBD_INT | mode::MOUSE_INT;
        self.status = status::CMD | status::UNLOCKED;
        self.outport.outport = outport::RESET | outport::A20 | outport::ONES;
        self.pending = 0;
        self.deassert_irq();
        self.throttle_deadline = None;
    }

    /// The output port value the status register implies (what QEMU assumes when
    /// the "pckbd_outport" subsection is absent).
    pub(super) fn default_outport(&self) -> u8 {
        let mut v = outport::RESET | outport::A20 | outport::ONES;
        if self.status & status::OBF != 0 {
            v |= outport::OBF;
        }
        if self.status & status::MOUSE_OBF != 0 {
            v |= outport::MOUSE_OBF;
        }
        v
    }

    /// Pending sources the command byte does not mask (with extended state a
    /// disabled interface's data waits; without it QEMU never masked).
    pub(super) fn effective_pending(&self) -> u8 {
        if self.extended_state {
            self.pending & !(self.mode & (pending::KBD | pending::AUX))
        } else {
            self.pending
        }
    }

    /// Drives IRQ 1 / IRQ 12 from the status and command byte.
    pub(super) fn update_irq_lines(&mut self) {
        let (mut kbd, mut mouse) = (false, false);
        if self.status & status::OBF != 0 {
            if self.status & status::MOUSE_OBF != 0 {
                mouse = self.mode & mode::MOUSE_INT != 0;
            } else {
                kbd = self.mode & mode::KBD_INT != 0 && self.mode & mode::DISABLE_KBD == 0;
            }
        }
        self.irq_kbd.set(kbd);
        self.irq_mouse.set(mouse);
    }

    /// Empties the output buffer flags and lowers the lines.
    pub(super) fn deassert_irq(&mut self) {
        self.status &= !(status::OBF | status::MOUSE_OBF);
        self.outport.outport &= !(outport::OBF | outport::MOUSE_OBF);
        self.update_irq_lines();
    }

    /// Gives the output buffer to the highest-priority pending source:
    /// controller reply (keyboard channel), controller reply (mouse channel),
    /// keyboard, mouse.
    pub(super) fn update_irq(&mut self) {
        let p = self.effective_pending();
        self.status &= !(status::OBF | status::MOUSE_OBF);
        self.outport.outport &= !(outport::OBF | outport::MOUSE_OBF);
        if p != 0 {
            self.status |= status::OBF;
            self.outport.outport |= outport::OBF;
            let (src, mouse_channel) = if p & pending::CTRL_KBD != 0 {
                (obsrc::CTRL, false)
            } else if p & pending::CTRL_AUX != 0 {
                (obsrc::CTRL, true)
            } else if p & pending::KBD != 0 {
                (obsrc::KBD, false)
            } else {
                (obsrc::MOUSE, true)
            };
            if mouse_channel {
                self.status |= status::MOUSE_OBF;
                self.outport.outport |= outport::MOUSE_OBF;
            }
            self.ext.obsrc = src;
        }
        self.update_irq_lines();
    }

    /// [`update_irq`](Self::update_irq) unless the buffer is full (the guest's
    /// read will do it) or the throttle timer is armed (its expiry will).
    pub(super) fn safe_update_irq(&mut self) {
        if self.status & status::OBF != 0 || self.throttle_deadline.is_some() {
            return;
        }
        if self.effective_pending() != 0 {
            self.update_irq();
        }
    }

    /// The keyboard's interrupt line.
    pub(super) fn kbd_input(&mut self, level: bool) {
        self.set_pending(pending::KBD, level);
    }

    /// The mouse's interrupt line.
    pub(super) fn aux_input(&mut self, level: bool) {
        self.set_pending(pending::AUX, level);
    }

    fn set_pending(&mut self, bit: u8, level: bool) {
        if level {
            self.pending |= bit;
        } else {
            self.pending &= !bit;
        }
        self.safe_update_irq();
    }

    /// The throttle timer expired.
    pub(super) fn throttle_timeout(&mut self) {
        self.throttle_deadline = None;
        if self.effective_pending() != 0 {
            self.update_irq();
        }
    }

    /// Arms the throttle timer (if the property is on) after a keyboard byte was read.
    pub(super) fn arm_throttle(&mut self, now_ns: u64) {
        if self.throttle {
            self.throttle_deadline = Some(now_ns.saturating_add(super::regs::THROTTLE_DELAY_NS));
        }
    }

    /// Puts a controller reply in `cbdata` (extended state only; QEMU
    /// `kbd_queue`). A newer reply replaces an unread one.
    pub(super) fn queue_ctrl(&mut self, b: u8, aux: bool) {
        self.ext.cbdata = b;
        self.pending &= !(pending::CTRL_KBD | pending::CTRL_AUX);
        self.pending |= if aux {
            pending::CTRL_AUX
        } else {
            pending::CTRL_KBD
        };
        self.safe_update_irq();
    }

    /// Takes the controller reply (QEMU `kbd_dequeue`).
    pub(super) fn dequeue_ctrl(&mut self) -> u8 {
        let b = self.ext.cbdata;
        self.pending &= !(pending::CTRL_KBD | pending::CTRL_AUX);
        if self.effective_pending() != 0 {
            self.update_irq();
        }
        b
    }
}

/// Read-only views of the registers.
impl KbdState {
    /// Pending controller command (0: none).
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// assert_eq!(ctl.controller().write_cmd(), 0);
    /// ctl.write_command(0x60); // waits for its data byte
    /// assert_eq!(ctl.controller().write_cmd(), 0x60);
    /// ctl.write_data(0x03);
    /// assert_eq!(ctl.controller().write_cmd(), 0);
    /// ```
    pub fn write_cmd(&self) -> u8 {
        self.write_cmd
    }

    /// The status register.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{regs::status, I8042};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xaa); // self test
    /// let st = ctl.controller().status();
    /// assert_eq!(st & (status::OBF | status::SELFTEST), status::OBF | status::SELFTEST);
    /// ```
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The command byte.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{regs::mode, I8042};
    ///
    /// let ctl = I8042::default();
    /// assert_eq!(ctl.controller().mode(), mode::KBD_INT | mode::MOUSE_INT);
    /// ```
    pub fn mode(&self) -> u8 {
        self.mode
    }

    /// The output port.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{regs::outport, I8042};
    ///
    /// let mut ctl = I8042::default();
    /// assert_ne!(ctl.controller().outport() & outport::A20, 0);
    /// ctl.write_command(0xdd); // A20 off
    /// assert_eq!(ctl.controller().outport() & outport::A20, 0);
    /// ```
    pub fn outport(&self) -> u8 {
        self.outport.outport
    }

    /// Sources with data for the output buffer (`regs::pending` bits).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{regs::pending, I8042, KeyCode};
    ///
    /// let mut ctl = I8042::default();
    /// assert_eq!(ctl.controller().pending(), 0);
    /// ctl.key_event(KeyCode::A, true);
    /// assert_ne!(ctl.controller().pending() & pending::KBD, 0);
    /// ```
    pub fn pending(&self) -> u8 {
        self.pending
    }

    /// Source of the byte in the output buffer (`regs::obsrc` bits).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{regs::obsrc, I8042, KeyCode};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.key_event(KeyCode::A, true);
    /// assert_eq!(ctl.controller().obsrc(), obsrc::KBD);
    /// ctl.read_data();
    /// ctl.write_command(0xaa); // self test: the controller's own reply
    /// assert_eq!(ctl.controller().obsrc(), obsrc::CTRL);
    /// ```
    pub fn obsrc(&self) -> u32 {
        self.ext.obsrc
    }

    /// The byte last delivered at port 0x60.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, KeyCode};
    ///
    /// let mut ctl = I8042::default();
    /// ctl.key_event(KeyCode::A, true);
    /// let b = ctl.read_data();
    /// assert_eq!(ctl.controller().obdata(), b);
    /// ```
    pub fn obdata(&self) -> u8 {
        self.ext.obdata
    }

    /// The controller's own reply byte.
    ///
    /// ```
    /// use vmstate_devices::pckbd::I8042;
    ///
    /// let mut ctl = I8042::default();
    /// ctl.write_command(0xaa); // self test replies 0x55
    /// assert_eq!(ctl.controller().cbdata(), 0x55);
    /// ```
    pub fn cbdata(&self) -> u8 {
        self.ext.cbdata
    }

    /// Whether the keyboard throttle timer is armed, and until when.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Config, KeyCode};
    ///
    /// let mut ctl = I8042::new(I8042Config { extended_state: true, kbd_throttle: true });
    /// assert_eq!(ctl.controller().throttle_deadline(), None);
    /// ctl.key_event(KeyCode::A, true);
    /// ctl.read_data(); // a keyboard byte delivered: the next one waits 1 ms
    /// assert_eq!(ctl.controller().throttle_deadline(), Some(1_000_000));
    /// ```
    pub fn throttle_deadline(&self) -> Option<u64> {
        self.throttle_deadline
    }

    /// Whether the `extended-state` property is on.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Config};
    ///
    /// assert!(I8042::default().controller().extended_state());
    /// let old = I8042::new(I8042Config { extended_state: false, kbd_throttle: false });
    /// assert!(!old.controller().extended_state());
    /// ```
    pub fn extended_state(&self) -> bool {
        self.extended_state
    }

    /// Whether keyboard throttling is on.
    ///
    /// ```
    /// use vmstate_devices::pckbd::{I8042, I8042Config};
    ///
    /// assert!(!I8042::default().controller().kbd_throttle());
    /// let ctl = I8042::new(I8042Config { extended_state: true, kbd_throttle: true });
    /// assert!(ctl.controller().kbd_throttle());
    /// ```
    pub fn kbd_throttle(&self) -> bool {
        self.throttle
    }
}
