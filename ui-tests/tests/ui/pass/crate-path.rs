//! `#[vmstate(crate = "...")]`: a VMM that re-exports the runtime points the derive
//! at its re-export, and the generated code names only that path (no
//! `::vmstate_runtime` dependency is visible at the use site).

/// The VMM's re-export of the runtime.
mod vmm {
    pub mod migration {
        pub use vmstate_runtime::*;
    }
}

use vmm::migration::{from_bytes, to_bytes, VmState};

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(crate = "crate::vmm::migration", name = "uart/fifo", version = 1)]
struct Fifo {
    level: u8,
}

#[derive(VmState, Default, Debug, PartialEq, Clone, Copy)]
#[vmstate(crate = "crate::vmm::migration")]
#[repr(u8)]
enum Parity {
    #[default]
    None = 0,
    Odd = 1,
}

#[derive(VmState, Default, Debug, PartialEq)]
#[vmstate(crate = "crate::vmm::migration", name = "uart", version = 2)]
struct Uart {
    lcr: u8,
    parity: Parity,
    #[vmstate(subsection)]
    fifo: Fifo,
}

fn main() {
    let uart = Uart { lcr: 3, parity: Parity::Odd, fifo: Fifo { level: 4 } };
    let bytes = to_bytes(&uart).unwrap();
    assert_eq!(&bytes[..2], [3, 1]);
    assert_eq!(from_bytes::<Uart>(&bytes, 2).unwrap(), uart);
}
