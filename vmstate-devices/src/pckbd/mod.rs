//! The PC keyboard controller: an i8042 with a PS/2 keyboard and mouse, whose
//! migration state is byte-identical to QEMU 7.2's.
//!
//! | type | QEMU device | section | version |
//! |---|---|---|---|
//! | [`I8042`] | `i8042` (ISA) | "pckbd" (nested struct "pckbd" as field `kbd`, subsections "pckbd_outport", "pckbd/extended_state") | 3 |
//! | [`Ps2Keyboard`] | `ps2-kbd` | "ps2kbd" (nested "PS2 Common State"; subsections "ps2kbd/ledstate", "ps2kbd/need_high_bit", "ps2kbd/command_reply_queue") | 3 (min 2) |
//! | [`Ps2Mouse`] | `ps2-mouse` | "ps2mouse" (nested "PS2 Common State") | 2 |
//!
//! In a `pc` machine QEMU writes them in the order "ps2kbd", "ps2mouse", "pckbd".
//! The [`I8042`] owns the two PS/2 devices and wires their interrupt lines; a
//! migration saves three bodies and loads them back into one destination
//! controller:
//!
//! ```
//! use vmstate_runtime::{from_bytes, to_bytes, VmState};
//! use vmstate_runtime::wire::Reader;
//! use vmstate_devices::pckbd::{I8042, KeyCode};
//!
//! let mut src = I8042::default();
//! src.write_port(0x64, 0x60);     // "write command byte" ...
//! src.write_port(0x60, 0x47);     // ... translate on, interrupts on
//! src.key_event(KeyCode::A, true);
//!
//! let (kbd, mouse, ctl) = (to_bytes(src.keyboard())?, to_bytes(src.mouse())?, to_bytes(&src)?);
//!
//! let mut dst = I8042::default();
//! dst.keyboard_mut().load(&mut Reader::new(&kbd[..]), 3)?;
//! dst.mouse_mut().load(&mut Reader::new(&mouse[..]), 2)?;
//! dst.load(&mut Reader::new(&ctl[..]), 3)?;
//! assert_eq!(dst.read_port(0x60), 0x1e); // 'a' in set 1
//! # Ok::<(), vmstate_runtime::Error>(())
//! ```
//!
//! In a savevm stream, [`register`] puts the three sections of one shared
//! `Arc<Mutex<I8042>>` into a [`Registry`](vmstate_runtime::savevm::Registry).
//!
//! Loads are untrusted: every queue pointer is sanitised as QEMU does since the
//! CVE-2017-16845 fix (see [`ps2::Ps2Common::sanitize`]), and no loaded value can
//! make the device panic or index outside its ring.

mod controller;
mod i8042;
mod migration;
pub mod ps2;
mod registration;
pub mod regs;

pub use controller::{IrqLine, KbdState};
pub use i8042::{I8042Config, I8042Event, I8042};
pub use ps2::{KeyCode, Ps2Keyboard, Ps2Mouse};
pub use registration::{register, PckbdPart, PckbdSection};
