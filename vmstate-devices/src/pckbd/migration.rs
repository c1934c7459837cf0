//! Migration of the controller: the two subsections of "pckbd" and the hooks of
//! [`KbdState`], equivalent to QEMU 7.2's `kbd_pre_save`, `kbd_pre_load`,
//! `kbd_post_load` and the subsections' own hooks.
//!
//! Wire layout of the nested "pckbd" body:
//!
//! ```text
//! write_cmd u8 | status u8 | mode u8 | pending_tmp u8
//! [05 0d "pckbd_outport"        be32 1 | outport u8]                     if outport != default
//! [05 14 "pckbd/extended_state" be32 0 | migration_flags be32 | obsrc be32
//!                                        | obdata u8 | cbdata u8]        if extended-state
//! ```

use vmstate_runtime::{Error, VmState};

use super::controller::KbdState;
use super::regs::{obsrc, pending, status, MIGR_TIMER_PENDING};
use vmstate_runtime::vmstate::SaveComputed;

/// Subsection "pckbd_outport", version 1 (a pre-"/" name: QEMU matches it by the
/// "pckbd" prefix).
#[derive(VmState, Clone, Debug, Default, PartialEq, Eq)]
#[vmstate(name = "pckbd_outport", version = 1, post_load = Self::post_load)]
pub(crate) struct Outport {
    /// The output port (live storage of the controller's outport).
    pub(super) outport: u8,
    /// Set when the subsection was in the stream being loaded.
    #[vmstate(skip)]
    pub(super) present: bool,
}

impl Outport {
    fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        self.present = true;
        Ok(())
    }
}

/// Subsection "pckbd/extended_state", version 0 (QEMU leaves `version_id` unset).
#[derive(VmState, Clone, Debug, Default, PartialEq, Eq)]
#[vmstate(name = "pckbd/extended_state", post_load = Self::post_load)]
pub(crate) struct ExtendedState {
    /// `MIGR_TIMER_PENDING` when the throttle timer was armed (set by pre_save).
    pub(super) migration_flags: SaveComputed<u32>,
    /// Source of the byte in the output buffer (`regs::obsrc` bits).
    pub(super) obsrc: u32,
    /// The byte last delivered at port 0x60.
    pub(super) obdata: u8,
    /// The controller's own reply byte.
    pub(super) cbdata: u8,
    /// Set when the subsection was in the stream being loaded.
    #[vmstate(skip)]
    pub(super) loaded: bool,
}

impl ExtendedState {
    fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        self.loaded = true;
        Ok(())
    }
}

/// `needed` tests and hooks of the nested "pckbd" description.
impl KbdState {
    /// "pckbd_outport" is sent when the port differs from what the status implies.
    pub(super) fn outport_not_default(&self) -> bool {
        self.outport.outport != self.default_outport()
    }

    /// "pckbd/extended_state" is sent when the property is on.
    pub(super) fn sends_extended_state(&self) -> bool {
        self.extended_state
    }

    /// `pending_tmp` carries every pending bit with extended state; without it,
    /// only the pre-6.1 encoding (keyboard 0x01, mouse 0x02). `migration_flags`
    /// records an armed throttle timer.
    pub(super) fn pre_save(&self) -> Result<(), Error> {
        let tmp = if self.extended_state {
            self.pending
        } else {
            let mut t = 0;
            if self.pending & pending::KBD != 0 {
                t |= pending::KBD_COMPAT;
            }
            if self.pending & pending::AUX != 0 {
                t |= pending::AUX_COMPAT;
            }
            t
        };
        self.pending_tmp.set(tmp);
        let flags = if self.throttle_deadline.is_some() {
            MIGR_TIMER_PENDING
        } else {
            0
        };
        self.ext.migration_flags.set(flags);
        Ok(())
    }

    /// Forget which subsections an earlier load saw.
    pub(super) fn pre_load(&mut self) -> Result<(), Error> {
        self.outport.present = false;
        self.ext.loaded = false;
        Ok(())
    }

    /// Rebuild the live state from what arrived (QEMU `kbd_post_load`):
    ///
    /// * no "pckbd_outport": the port is what the status implies;
    /// * `pending` comes from `pending_tmp`;
    /// * no "pckbd/extended_state" (an old or `extended-state=off` source): the
    ///   output-buffer source is derived from the status (mouse if MOUSE_OBF,
    ///   else keyboard, none if the buffer is empty) and the compat bits mean
    ///   keyboard / mouse data;
    /// * only the four meaningful pending bits are kept.
    ///
    /// A throttle timer that was armed on the source is handled after `pending`
    /// is restored (QEMU runs its timeout from the subsection's post_load, before
    /// the parent restores `pending`, which on a freshly reset destination makes
    /// it a no-op): with `kbd-throttle` on here the timer is re-armed to expire
    /// at once (so an immediate re-save still carries the flag), otherwise the
    /// timeout runs now and offers the pending byte.
    ///
    /// Finally IRQ 1 / IRQ 12 are driven from the loaded status and command byte.
    pub(super) fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        if !self.outport.present {
            self.outport.outport = self.default_outport();
        }
        self.pending = self.pending_tmp.get();
        if !self.ext.loaded {
            self.ext.obsrc = if self.status & status::OBF == 0 {
                0
            } else if self.status & status::MOUSE_OBF != 0 {
                obsrc::MOUSE
            } else {
                obsrc::KBD
            };
            if self.pending & pending::KBD_COMPAT != 0 {
                self.pending |= pending::KBD;
            }
            if self.pending & pending::AUX_COMPAT != 0 {
                self.pending |= pending::AUX;
            }
        }
        self.pending &= pending::VALID;
        self.outport.present = false;

        let timer_was_armed =
            self.ext.loaded && self.ext.migration_flags.get() & MIGR_TIMER_PENDING != 0;
        if timer_was_armed {
            if self.throttle {
                self.throttle_deadline = Some(0);
            } else {
                self.throttle_timeout();
            }
        }
        self.update_irq_lines();
        Ok(())
    }
}
