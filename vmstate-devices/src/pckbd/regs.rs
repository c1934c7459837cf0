//! Register bits and command codes of the i8042 keyboard controller.

/// I/O port of the data register (output buffer / input buffer).
pub const DATA_PORT: u16 = 0x60;
/// I/O port of the status register (read) and command register (write).
pub const STATUS_PORT: u16 = 0x64;

/// Status register bits (read from port 0x64).
pub mod status {
    /// Output buffer full: a byte is waiting at port 0x60.
    pub const OBF: u8 = 0x01;
    /// Input buffer full (never set by this emulation).
    pub const IBF: u8 = 0x02;
    /// System flag: the self test (0xaa) passed.
    pub const SELFTEST: u8 = 0x04;
    /// Last write was a command (port 0x64) rather than data.
    pub const CMD: u8 = 0x08;
    /// Keyboard not inhibited by the keylock.
    pub const UNLOCKED: u8 = 0x10;
    /// The byte in the output buffer comes from the mouse.
    pub const MOUSE_OBF: u8 = 0x20;
    /// General timeout.
    pub const GTO: u8 = 0x40;
    /// Parity error.
    pub const PERR: u8 = 0x80;
}

/// Command byte ("mode") bits, read with 0x20 and written with 0x60.
pub mod mode {
    /// Keyboard data raises IRQ 1.
    pub const KBD_INT: u8 = 0x01;
    /// Mouse data raises IRQ 12.
    pub const MOUSE_INT: u8 = 0x02;
    /// System flag.
    pub const SYS: u8 = 0x04;
    /// Ignore the keylock.
    pub const NO_KEYLOCK: u8 = 0x08;
    /// Keyboard interface disabled.
    pub const DISABLE_KBD: u8 = 0x10;
    /// Mouse interface disabled.
    pub const DISABLE_MOUSE: u8 = 0x20;
    /// Translate keyboard scancodes from set 2 to set 1 (KCC).
    pub const KCC: u8 = 0x40;
    /// Reserved.
    pub const RFU: u8 = 0x80;
}

/// Output port bits (read with 0xd0, written with 0xd1).
pub mod outport {
    /// System reset line; writing 0 here resets the machine.
    pub const RESET: u8 = 0x01;
    /// Gate A20.
    pub const A20: u8 = 0x02;
    /// Keyboard output buffer full.
    pub const OBF: u8 = 0x10;
    /// Mouse output buffer full.
    pub const MOUSE_OBF: u8 = 0x20;
    /// Bits QEMU keeps set in the default value so the subsection is rarely needed.
    pub const ONES: u8 = 0xcc;
}

/// Bits of the pending-data mask (which sources have a byte for the output buffer).
pub mod pending {
    /// Pre-6.1 encoding of [`KBD`], used on the wire without extended state.
    pub const KBD_COMPAT: u8 = 0x01;
    /// Pre-6.1 encoding of [`AUX`], used on the wire without extended state.
    pub const AUX_COMPAT: u8 = 0x02;
    /// A controller reply (`cbdata`) for the keyboard channel.
    pub const CTRL_KBD: u8 = 0x04;
    /// A controller reply (`cbdata`) for the mouse channel (0xd3).
    pub const CTRL_AUX: u8 = 0x08;
    /// The keyboard has data (same bit as the mode's DISABLE_KBD, which masks it).
    pub const KBD: u8 = 0x10;
    /// The mouse has data (same bit as the mode's DISABLE_MOUSE, which masks it).
    pub const AUX: u8 = 0x20;
    /// The bits that survive a load.
    pub const VALID: u8 = CTRL_KBD | CTRL_AUX | KBD | AUX;
}

/// Sources of the byte in the output buffer (`obsrc`).
pub mod obsrc {
    /// The PS/2 keyboard.
    pub const KBD: u32 = 0x01;
    /// The PS/2 mouse.
    pub const MOUSE: u32 = 0x02;
    /// The controller itself (`cbdata`).
    pub const CTRL: u32 = 0x04;
}

/// `migration_flags` bit: the keyboard throttle timer was armed.
pub const MIGR_TIMER_PENDING: u32 = 0x1;

/// Delay before the next keyboard byte is offered when `kbd-throttle` is on.
pub const THROTTLE_DELAY_NS: u64 = 1_000_000;

/// Controller commands (written to port 0x64).
pub mod command {
    /// Read the command byte.
    pub const READ_MODE: u8 = 0x20;
    /// Write the command byte (data follows).
    pub const WRITE_MODE: u8 = 0x60;
    /// Get version (not implemented, as in QEMU).
    pub const GET_VERSION: u8 = 0xa1;
    /// Disable the mouse interface.
    pub const MOUSE_DISABLE: u8 = 0xa7;
    /// Enable the mouse interface.
    pub const MOUSE_ENABLE: u8 = 0xa8;
    /// Mouse interface test: replies 0x00.
    pub const TEST_MOUSE: u8 = 0xa9;
    /// Controller self test: replies 0x55.
    pub const SELF_TEST: u8 = 0xaa;
    /// Keyboard interface test: replies 0x00.
    pub const KBD_TEST: u8 = 0xab;
    /// Disable the keyboard interface.
    pub const KBD_DISABLE: u8 = 0xad;
    /// Enable the keyboard interface.
    pub const KBD_ENABLE: u8 = 0xae;
    /// Read the input port: replies 0x80.
    pub const READ_INPORT: u8 = 0xc0;
    /// Read the output port.
    pub const READ_OUTPORT: u8 = 0xd0;
    /// Write the output port (data follows).
    pub const WRITE_OUTPORT: u8 = 0xd1;
    /// Write the keyboard output buffer (data follows).
    pub const WRITE_OBUF: u8 = 0xd2;
    /// Write the mouse output buffer (data follows).
    pub const WRITE_AUX_OBUF: u8 = 0xd3;
    /// Send the next data byte to the mouse.
    pub const WRITE_MOUSE: u8 = 0xd4;
    /// Disable gate A20.
    pub const DISABLE_A20: u8 = 0xdd;
    /// Enable gate A20.
    pub const ENABLE_A20: u8 = 0xdf;
    /// 0xf0..=0xff pulse output-port bits 3..0 low; only bit 0 (reset) matters.
    pub const PULSE_BITS_3_0: u8 = 0xf0;
    /// Pulse the reset line: the machine resets.
    pub const RESET: u8 = 0xfe;
    /// Pulse nothing.
    pub const NO_OP: u8 = 0xff;
}
