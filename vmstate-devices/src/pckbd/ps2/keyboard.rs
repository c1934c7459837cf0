//! The PS/2 keyboard's state and its migration: section "ps2kbd", version 3
//! (minimum 2). The protocol (commands, key events) is in `keyboard_protocol.rs`.

use vmstate_runtime::VmState;

use super::queue::{Ps2Common, NONE};
use vmstate_runtime::vmstate::SaveComputed;

/// A PS/2 keyboard (QEMU device `ps2-kbd`, section "ps2kbd" version 3, minimum 2).
///
/// [`Default`] is the state after reset in a fresh QEMU `pc` machine: scanning
/// enabled, scancode set 2, no translation, LEDs off, empty queue.
///
/// ```
/// use vmstate_runtime::{from_bytes, to_bytes};
/// use vmstate_devices::pckbd::{KeyCode, Ps2Keyboard};
///
/// let mut kbd = Ps2Keyboard::default();
/// kbd.write(0xf2, &mut |_| {}); // get id
/// kbd.key_event(KeyCode::A, true, &mut |_| {});
/// assert_eq!(kbd.common().queued(), [0xfa, 0xab, 0x83, 0x1c]);
///
/// // Migrate: the body is byte-identical to what QEMU writes for this state.
/// let body = to_bytes(&kbd)?;
/// let mut dest: Ps2Keyboard = from_bytes(&body, 3)?;
/// assert_eq!(dest.read(&mut |_| {}), 0xfa);
/// # Ok::<(), vmstate_runtime::Error>(())
/// ```
#[derive(VmState, Clone, Debug, PartialEq, Eq)]
#[vmstate(
    name = "ps2kbd",
    version = 3,
    minimum_version = 2,
    pre_save = Self::pre_save,
    pre_load = Self::pre_load,
    post_load = Self::post_load
)]
pub struct Ps2Keyboard {
    /// The common PS/2 state ("PS2 Common State": command byte and queue).
    pub(super) parent_obj: Ps2Common,
    /// Whether key events are reported (0 after 0xf5).
    pub(super) scan_enabled: i32,
    /// Whether the controller translates set 2 to set 1 (its command byte's KCC bit).
    pub(super) translate: i32,
    /// Scancode set 1, 2 or 3; version-2 streams do not carry it (post_load sets 2).
    #[vmstate(since = 3)]
    pub(super) scancode_set: i32,
    /// LED state set by 0xed; sent only when some LED is on.
    #[vmstate(subsection(needed = Self::leds_on))]
    pub(super) ledstate: LedState,
    /// Set-1 translation saw a set-2 break prefix (0xf0) whose key has not come yet.
    #[vmstate(subsection(needed = Self::break_pending))]
    pub(super) need_high_bit: NeedHighBit,
    /// End of the command-reply block, when replies are queued.
    #[vmstate(subsection(needed = Self::replies_queued))]
    pub(super) command_reply_queue: CommandReplyQueue,
    /// Held modifiers (for the Pause and Print sequences); not migrated.
    #[vmstate(skip)]
    pub(super) modifiers: u8,
}

/// Subsection "ps2kbd/ledstate", version 3 (minimum 2).
#[derive(VmState, Clone, Debug, Default, PartialEq, Eq)]
#[vmstate(name = "ps2kbd/ledstate", version = 3, minimum_version = 2)]
pub(crate) struct LedState {
    /// Bit 0 scroll lock, bit 1 num lock, bit 2 caps lock.
    pub(super) ledstate: i32,
}

/// Subsection "ps2kbd/need_high_bit", version 1.
#[derive(VmState, Clone, Debug, Default, PartialEq, Eq)]
#[vmstate(name = "ps2kbd/need_high_bit", version = 1)]
pub(crate) struct NeedHighBit {
    /// The next translated byte gets the break bit (0x80).
    pub(super) need_high_bit: bool,
}

/// Subsection "ps2kbd/command_reply_queue", version 0. QEMU's field is
/// `parent_obj.queue.cwptr`; the live value is [`Ps2Common::cwptr`], copied here
/// by `pre_save`/`pre_load` and back by `post_load`.
#[derive(VmState, Clone, Debug, PartialEq, Eq)]
#[vmstate(name = "ps2kbd/command_reply_queue")]
pub(crate) struct CommandReplyQueue {
    #[vmstate(rename = "parent_obj.queue.cwptr")]
    cwptr: SaveComputed<i32>,
}

impl Default for CommandReplyQueue {
    fn default() -> Self {
        CommandReplyQueue {
            cwptr: SaveComputed::new(NONE),
        }
    }
}

impl Default for Ps2Keyboard {
    fn default() -> Self {
        Ps2Keyboard {
            parent_obj: Ps2Common::default(),
            scan_enabled: 1,
            translate: 0,
            scancode_set: 2,
            ledstate: LedState::default(),
            need_high_bit: NeedHighBit::default(),
            command_reply_queue: CommandReplyQueue::default(),
            modifiers: 0,
        }
    }
}

/// Migration hooks: QEMU's `ps2_kbd_post_load` and the `needed` tests.
impl Ps2Keyboard {
    fn leds_on(&self) -> bool {
        self.ledstate.ledstate != 0
    }

    fn break_pending(&self) -> bool {
        self.need_high_bit.need_high_bit
    }

    fn replies_queued(&self) -> bool {
        self.parent_obj.cwptr() != NONE
    }

    fn pre_save(&self) -> Result<(), vmstate_runtime::Error> {
        self.command_reply_queue.cwptr.set(self.parent_obj.cwptr());
        Ok(())
    }

    /// A stream without the reply subsection leaves `cwptr` as it is (as QEMU).
    fn pre_load(&mut self) -> Result<(), vmstate_runtime::Error> {
        self.command_reply_queue.cwptr.set(self.parent_obj.cwptr());
        Ok(())
    }

    /// Version 2 had no scancode set (it was always 2); then the queue is
    /// sanitised so no loaded value can index outside the ring.
    fn post_load(&mut self, version_id: u32) -> Result<(), vmstate_runtime::Error> {
        if version_id == 2 {
            self.scancode_set = 2;
        }
        self.parent_obj
            .set_cwptr(self.command_reply_queue.cwptr.get());
        self.parent_obj.sanitize();
        Ok(())
    }
}

/// Read-only views of the state.
impl Ps2Keyboard {
    /// The common PS/2 state (pending command, queue).
    ///
    /// ```
    /// use vmstate_devices::pckbd::{KeyCode, Ps2Keyboard};
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// kbd.key_event(KeyCode::A, true, &mut |_| {});
    /// assert_eq!(kbd.common().queued(), [0x1c]);
    /// ```
    pub fn common(&self) -> &Ps2Common {
        &self.parent_obj
    }

    /// Whether key events are reported.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// assert!(kbd.scan_enabled());
    /// kbd.write(0xf5, &mut |_| {}); // reset and disable scanning
    /// assert!(!kbd.scan_enabled());
    /// ```
    pub fn scan_enabled(&self) -> bool {
        self.scan_enabled != 0
    }

    /// Whether set-2 scancodes are translated to set 1 on the way out.
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// assert!(!kbd.translate());
    /// kbd.set_translation(true);
    /// assert!(kbd.translate());
    /// ```
    pub fn translate(&self) -> bool {
        self.translate != 0
    }

    /// The scancode set (1, 2 or 3; other values only from a hostile stream, and
    /// then keys are ignored).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// assert_eq!(kbd.scancode_set(), 2);
    /// kbd.write(0xf0, &mut |_| {}); // select scancode set ...
    /// kbd.write(0x03, &mut |_| {}); // ... 3
    /// assert_eq!(kbd.scancode_set(), 3);
    /// ```
    pub fn scancode_set(&self) -> i32 {
        self.scancode_set
    }

    /// The LED state last set by the guest (bit 0 scroll, 1 num, 2 caps lock).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// kbd.write(0xed, &mut |_| {}); // set LEDs ...
    /// kbd.write(0x04, &mut |_| {}); // ... caps lock
    /// assert_eq!(kbd.ledstate(), 0x04);
    /// ```
    pub fn ledstate(&self) -> i32 {
        self.ledstate.ledstate
    }

    /// Whether a translated break code is half-way through (0xf0 seen).
    ///
    /// ```
    /// use vmstate_devices::pckbd::Ps2Keyboard;
    ///
    /// let mut kbd = Ps2Keyboard::default();
    /// kbd.set_translation(true);
    /// kbd.put_keycode(0xf0, &mut |_| {}); // set-2 break prefix: held back
    /// assert!(kbd.need_high_bit());
    /// kbd.put_keycode(0x1c, &mut |_| {}); // 'a' released: set-1 0x9e
    /// assert!(!kbd.need_high_bit());
    /// assert_eq!(kbd.common().queued(), [0x9e]);
    /// ```
    pub fn need_high_bit(&self) -> bool {
        self.need_high_bit.need_high_bit
    }
}
