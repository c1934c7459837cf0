//! The state every PS/2 device shares: the pending command byte and the 256-byte
//! ring of bytes waiting for the controller ("PS2 Common State" on the wire).
//!
//! Queue semantics (QEMU 7.2):
//!
//! * device data (scancodes, mouse packets, mouse replies) is appended at `wptr`,
//!   all-or-nothing per message, and only while fewer than [`QUEUE_SIZE`] bytes
//!   are queued;
//! * keyboard command replies are *prepended*: `rptr` steps back and the reply is
//!   written there, so it is read before queued scancodes. `cwptr` marks the end
//!   of the reply block (-1 when there is none). A new keyboard command first
//!   discards unread replies;
//! * reading an empty queue returns the byte before `rptr` again (what real
//!   controllers and EMM386 expect).
//!
//! Every index is reduced modulo the ring size when it is used, so even a state
//! left behind by a failed load can never index outside the ring; a successful
//! load is sanitised by [`Ps2Common::sanitize`] exactly as QEMU does since the
//! CVE-2017-16845 fix.

use vmstate_runtime::VmState;

/// Size of the ring buffer (QEMU `PS2_BUFFER_SIZE`).
pub const BUFFER_SIZE: usize = 256;
/// Bytes of device data the queue holds (QEMU `PS2_QUEUE_SIZE`).
pub const QUEUE_SIZE: i32 = 16;
/// Extra room for keyboard command replies (QEMU `PS2_QUEUE_HEADROOM`).
pub const QUEUE_HEADROOM: i32 = 8;
/// `write_cmd` / `cwptr` value meaning "none".
pub const NONE: i32 = -1;

const MASK: i32 = BUFFER_SIZE as i32 - 1;

/// The common PS/2 device state: nested struct "PS2 Common State", version 3
/// (minimum 2), 272 bytes on the wire.
///
/// ```
/// use vmstate_devices::pckbd::Ps2Keyboard;
/// let kbd = Ps2Keyboard::default();
/// assert_eq!(kbd.common().write_cmd(), -1);
/// assert_eq!(kbd.common().len(), 0);
/// ```
#[derive(VmState, Clone, PartialEq, Eq)]
#[vmstate(name = "PS2 Common State", version = 3, minimum_version = 2)]
pub struct Ps2Common {
    /// Command waiting for its argument byte, or -1 (QEMU `write_cmd`).
    write_cmd: i32,
    /// Read index (QEMU `queue.rptr`).
    #[vmstate(rename = "queue.rptr")]
    rptr: i32,
    /// Write index for device data (QEMU `queue.wptr`).
    #[vmstate(rename = "queue.wptr")]
    wptr: i32,
    /// Queued bytes, command replies included (QEMU `queue.count`).
    #[vmstate(rename = "queue.count")]
    count: i32,
    /// The ring (QEMU `queue.data`).
    #[vmstate(buffer, rename = "queue.data")]
    data: [u8; BUFFER_SIZE],
    /// End of the command-reply block, or -1 (QEMU `queue.cwptr`; only the keyboard
    /// migrates it, in its "command_reply_queue" subsection).
    #[vmstate(skip)]
    cwptr: i32,
}

impl Default for Ps2Common {
    /// The state after reset: no pending command, empty queue.
    fn default() -> Self {
        Ps2Common {
            write_cmd: NONE,
            rptr: 0,
            wptr: 0,
            count: 0,
            data: [0; BUFFER_SIZE],
            cwptr: NONE,
        }
    }
}

impl std::fmt::Debug for Ps2Common {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ps2Common")
            .field("write_cmd", &self.write_cmd)
            .field("rptr", &self.rptr)
            .field("wptr", &self.wptr)
            .field("count", &self.count)
            .field("cwptr", &self.cwptr)
            .field("queued", &self.queued())
            .finish()
    }
}

/// Ring index of a possibly out-of-range pointer.
#[inline]
fn slot(ptr: i32) -> usize {
    (ptr & MASK) as usize
}

impl Ps2Common {
    /// The command waiting for its argument byte, or -1.
    pub fn write_cmd(&self) -> i32 {
        self.write_cmd
    }

    /// Number of queued bytes (command replies included).
    pub fn len(&self) -> i32 {
        self.count
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The read index.
    pub fn rptr(&self) -> i32 {
        self.rptr
    }

    /// The device-data write index.
    pub fn wptr(&self) -> i32 {
        self.wptr
    }

    /// The end of the command-reply block, or -1 when no reply is queued.
    pub fn cwptr(&self) -> i32 {
        self.cwptr
    }

    /// The queued bytes in read order (at most the ring size).
    pub fn queued(&self) -> Vec<u8> {
        let n = self.count.clamp(0, BUFFER_SIZE as i32);
        (0..n)
            .map(|i| self.data[slot(self.rptr.wrapping_add(i))])
            .collect()
    }

    pub(crate) fn set_write_cmd(&mut self, cmd: i32) {
        self.write_cmd = cmd;
    }

    pub(crate) fn set_cwptr(&mut self, cwptr: i32) {
        self.cwptr = cwptr;
    }

    /// Empties the queue (QEMU `ps2_reset_queue`).
    pub(crate) fn reset_queue(&mut self) {
        self.rptr = 0;
        self.wptr = 0;
        self.cwptr = NONE;
        self.count = 0;
    }

    /// Device reset: no pending command, empty queue. The caller lowers the IRQ.
    pub(crate) fn reset(&mut self) {
        self.write_cmd = NONE;
        self.reset_queue();
    }

    /// Appends one byte unless the device-data limit is reached; no interrupt.
    pub(crate) fn push_noirq(&mut self, b: u8) {
        if self.count >= QUEUE_SIZE {
            return;
        }
        self.data[slot(self.wptr)] = b;
        self.wptr = (self.wptr.wrapping_add(1)) & MASK;
        self.count = self.count.wrapping_add(1);
    }

    /// Whether `n` more bytes of device data fit.
    pub(crate) fn has_room(&self, n: i32) -> bool {
        QUEUE_SIZE.saturating_sub(self.count) >= n
    }

    /// Appends a whole message or nothing, then raises the IRQ (QEMU
    /// `ps2_queue`, `ps2_queue_2`..`_4`).
    pub(crate) fn push(&mut self, bytes: &[u8], irq: &mut dyn FnMut(bool)) {
        if !self.has_room(bytes.len() as i32) {
            return;
        }
        for &b in bytes {
            self.push_noirq(b);
        }
        irq(true);
    }

    /// Prepends a keyboard command reply (QEMU `ps2_cqueue_1`..`_3`).
    pub(crate) fn push_reply(&mut self, bytes: &[u8], irq: &mut dyn FnMut(bool)) {
        self.rptr = self.rptr.wrapping_sub(bytes.len() as i32) & MASK;
        self.cwptr = self.rptr;
        for &b in bytes {
            self.data[slot(self.cwptr)] = b;
            self.cwptr = self.cwptr.wrapping_add(1);
            if self.cwptr >= BUFFER_SIZE as i32 || self.cwptr < 0 {
                self.cwptr = 0;
            }
            self.count = self.count.wrapping_add(1);
        }
        irq(true);
    }

    /// Discards unread command replies (QEMU `ps2_cqueue_reset`).
    pub(crate) fn drop_replies(&mut self) {
        if self.cwptr == NONE {
            return;
        }
        let replies = self.cwptr.wrapping_sub(self.rptr) & MASK;
        self.count = self.count.wrapping_sub(replies);
        self.rptr = self.cwptr & MASK;
        self.cwptr = NONE;
    }

    /// Reads the next byte (QEMU `ps2_read_data`): lowers the IRQ and raises it
    /// again while bytes remain. An empty queue repeats the previous byte.
    pub(crate) fn read(&mut self, irq: &mut dyn FnMut(bool)) -> u8 {
        if self.count == 0 {
            return self.data[slot(self.rptr.wrapping_sub(1))];
        }
        let val = self.data[slot(self.rptr)];
        self.rptr = self.rptr.wrapping_add(1) & MASK;
        self.count = self.count.wrapping_sub(1);
        if self.rptr == self.cwptr {
            self.cwptr = NONE;
        }
        irq(false);
        if self.count != 0 {
            irq(true);
        }
        val
    }

    /// Makes a loaded queue safe and consistent (QEMU `ps2_common_post_load`, the
    /// CVE-2017-16845 hardening):
    ///
    /// 1. command replies: `(cwptr - rptr) mod 256` when `cwptr != -1`, at most
    ///    [`QUEUE_HEADROOM`] (8), else 0;
    /// 2. `count` is clamped to `replies ..= replies + QUEUE_SIZE` (16);
    /// 3. `rptr` is reduced modulo 256;
    /// 4. `wptr = (rptr + count) mod 256`, `cwptr = (rptr + replies) mod 256` or
    ///    -1 when there are no replies.
    ///
    /// ```
    /// use vmstate_runtime::{from_bytes, VmState};
    /// use vmstate_devices::pckbd::Ps2Mouse;
    ///
    /// // A hostile mouse section: rptr = 0x7fffffff, wptr = -5, count = 1000.
    /// let mut body = vec![0xff; 4];
    /// body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    /// body.extend_from_slice(&(-5i32).to_be_bytes());
    /// body.extend_from_slice(&1000i32.to_be_bytes());
    /// body.resize(291, 0);
    /// let mouse: Ps2Mouse = from_bytes(&body, 2)?;
    /// let q = mouse.common();
    /// assert_eq!((q.rptr(), q.len(), q.wptr(), q.cwptr()), (255, 16, 15, -1));
    /// # Ok::<(), vmstate_runtime::Error>(())
    /// ```
    pub fn sanitize(&mut self) {
        let replies = if self.cwptr != NONE {
            (self.cwptr.wrapping_sub(self.rptr) & MASK).min(QUEUE_HEADROOM)
        } else {
            0
        };
        self.count = self.count.clamp(replies, replies + QUEUE_SIZE);
        self.rptr &= MASK;
        self.wptr = (self.rptr + self.count) & MASK;
        self.cwptr = if replies != 0 {
            (self.rptr + replies) & MASK
        } else {
            NONE
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_irq() -> impl FnMut(bool) {
        |_| {}
    }

    #[test]
    fn device_data_is_capped_at_16_and_all_or_nothing() {
        let mut q = Ps2Common::default();
        let mut irqs = Vec::new();
        for i in 0..5 {
            q.push(&[i, i, i], &mut |l| irqs.push(l));
        }
        assert_eq!(q.len(), 15);
        q.push(&[9, 9], &mut no_irq()); // needs 2, only 1 free: dropped whole
        assert_eq!(q.len(), 15);
        q.push(&[7], &mut no_irq());
        assert_eq!(q.len(), 16);
        q.push(&[8], &mut no_irq());
        assert_eq!(q.len(), 16);
        assert_eq!(irqs, [true; 5]);
    }

    #[test]
    fn replies_jump_ahead_of_scancodes() {
        let mut q = Ps2Common::default();
        q.push(&[0x1c], &mut no_irq());
        q.push_reply(&[0xfa, 0xab, 0x83], &mut no_irq());
        assert_eq!((q.rptr(), q.cwptr(), q.len()), (253, 0, 4));
        assert_eq!(q.queued(), [0xfa, 0xab, 0x83, 0x1c]);
        assert_eq!(q.read(&mut no_irq()), 0xfa);
        q.drop_replies();
        assert_eq!((q.rptr(), q.cwptr(), q.len()), (0, -1, 1));
        assert_eq!(q.read(&mut no_irq()), 0x1c);
    }

    #[test]
    fn reading_the_last_reply_clears_cwptr_and_empty_reads_repeat() {
        let mut q = Ps2Common::default();
        q.push_reply(&[0xfa], &mut no_irq());
        let mut levels = Vec::new();
        assert_eq!(q.read(&mut |l| levels.push(l)), 0xfa);
        assert_eq!(levels, [false]);
        assert_eq!(q.cwptr(), -1);
        assert_eq!(q.read(&mut no_irq()), 0xfa);
        assert_eq!(q.read(&mut no_irq()), 0xfa);
    }

    #[test]
    fn read_reasserts_while_bytes_remain() {
        let mut q = Ps2Common::default();
        q.push(&[1, 2], &mut no_irq());
        let mut levels = Vec::new();
        q.read(&mut |l| levels.push(l));
        assert_eq!(levels, [false, true]);
    }

    fn hostile(rptr: i32, wptr: i32, count: i32, cwptr: i32) -> Ps2Common {
        Ps2Common {
            rptr,
            wptr,
            count,
            cwptr,
            ..Ps2Common::default()
        }
    }

    #[test]
    fn sanitize_cases() {
        // (rptr, wptr, count, cwptr) -> (rptr, wptr, count, cwptr)
        let cases = [
            ((0x7fff_ffff, 0, 1, -1), (255, 0, 1, -1)),
            ((0, 0, -1, -1), (0, 0, 0, -1)),
            ((0, 0, 1000, -1), (0, 16, 16, -1)),
            ((i32::MIN, i32::MAX, i32::MIN, -1), (0, 0, 0, -1)),
            // cwptr 3 ahead of rptr: 3 replies, count raised to at least 3.
            ((10, 99, 0, 13), (10, 13, 3, 13)),
            // hostile cwptr: (0x12345 - 5) mod 256 = 0x40 replies, capped at 8.
            ((5, 0, 100, 0x12345), (5, 29, 24, 13)),
            // cwptr == rptr: zero replies, so no reply block.
            ((7, 0, 2, 7), (7, 9, 2, -1)),
            // cwptr -2 is "not none": (-2 - 255) mod 256 = 255 replies, capped at 8.
            ((-1, 0, 0, -2), (255, 7, 8, 7)),
        ];
        for ((r, w, c, cw), expected) in cases {
            let mut q = hostile(r, w, c, cw);
            q.sanitize();
            assert_eq!(
                (q.rptr, q.wptr, q.count, q.cwptr),
                expected,
                "input {r} {w} {c} {cw}"
            );
            // And the sanitised queue is usable.
            let _ = q.read(&mut no_irq());
            q.push(&[1, 2, 3], &mut no_irq());
        }
    }

    #[test]
    fn unsanitised_garbage_never_panics() {
        for v in [i32::MIN, -2, -1, 255, 256, i32::MAX] {
            let mut q = hostile(v, v, v, v);
            let _ = q.read(&mut no_irq());
            q.push(&[1, 2, 3], &mut no_irq());
            q.push_reply(&[1, 2, 3], &mut no_irq());
            q.drop_replies();
            let _ = q.queued();
        }
    }
}
