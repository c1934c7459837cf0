//! PS/2 devices: the keyboard ("ps2kbd") and the mouse ("ps2mouse"), which share
//! the "PS2 Common State" queue.
//!
//! They are normally driven through [`I8042`](super::I8042), which wires their
//! interrupt lines into the controller; used alone, every method that moves data
//! takes the device's line as an `irq: &mut dyn FnMut(bool)` callback.

mod keyboard;
mod keyboard_protocol;
mod keys;
mod mouse;
mod mouse_protocol;
mod queue;

pub use keyboard::Ps2Keyboard;
pub use keyboard_protocol::{command as keyboard_command, reply as keyboard_reply};
pub use keys::{translate_set2_to_set1, KeyCode};
pub use mouse::Ps2Mouse;
pub use mouse_protocol::{
    command as mouse_command, status as mouse_status, Axis, MouseButton, ACK as MOUSE_ACK,
};
pub use queue::{Ps2Common, BUFFER_SIZE, NONE, QUEUE_HEADROOM, QUEUE_SIZE};
