//! The main job, on built-in defaults: declare a device with `#[derive(VmState)]`,
//! save it, load it back, print its wire layout, then show what an older stream and
//! a corrupted stream do.
//!
//! Run: `cargo run --release -p vmstate-examples --bin demo`

use vmstate_examples::hexdump;
use vmstate_runtime::{from_bytes, to_bytes, Error, VmState};

/// A 16550-style UART, migrated the QEMU way.
#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "serial", version = 3, minimum_version = 2, post_load = Self::post_load)]
struct Uart {
    divider: u16,
    rbr: u8,
    ier: u8,
    iir: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    #[vmstate(since = 3)]
    fcr: u8,
    /// Bytes received but not yet read by the guest.
    recv_len: u8,
    #[vmstate(varray(len = recv_len), max = 16)]
    recv_fifo: Vec<u8>,
    /// Only sent while the FIFO timeout timer is armed.
    #[vmstate(subsection(needed = Self::timeout_needed))]
    timeout: FifoTimeout,
    /// Host-side wiring: never migrated.
    #[vmstate(skip)]
    backend: String,
}

#[derive(VmState, Default, Debug, PartialEq, Clone)]
#[vmstate(name = "serial/timeout", version = 1)]
struct FifoTimeout {
    #[vmstate(timer)]
    expires_ns: Option<u64>,
}

impl Uart {
    fn timeout_needed(&self) -> bool {
        self.timeout.expires_ns.is_some()
    }

    fn post_load(&mut self, _version_id: u32) -> Result<(), Error> {
        // Derived state is recomputed, never trusted from the stream.
        if self.recv_fifo.is_empty() {
            self.lsr &= !0x01;
        }
        Ok(())
    }
}

fn main() -> Result<(), Error> {
    let uart = Uart {
        divider: 12,
        ier: 0x05,
        iir: 0xc1,
        lcr: 0x03,
        mcr: 0x0b,
        lsr: 0x61,
        msr: 0xb0,
        fcr: 0xc7,
        recv_len: 3,
        recv_fifo: b"hi\n".to_vec(),
        timeout: FifoTimeout {
            expires_ns: Some(1_000_000),
        },
        backend: "stdio".into(),
        ..Default::default()
    };

    println!("== Wire layout (from the static description)");
    print!("{}", Uart::DESCRIPTION.layout_table());

    let bytes = to_bytes(&uart)?;
    println!(
        "\n== Saved body: {} bytes at version {}",
        bytes.len(),
        Uart::DESCRIPTION.version_id
    );
    print!("{}", hexdump(&bytes));

    let back: Uart = from_bytes(&bytes, Uart::DESCRIPTION.version_id)?;
    let expected = Uart {
        backend: String::new(),
        ..uart.clone()
    };
    assert_eq!(
        back, expected,
        "round trip must be the identity on migrated state"
    );
    println!(
        "\n== Loaded back: identical migrated state (backend is host-side: {:?})",
        back.backend
    );

    // A version-2 stream has no `fcr`: it keeps its default.
    let mut v2 = bytes.clone();
    v2.remove(10); // drop fcr
    let old: Uart = from_bytes(&v2, 2)?;
    println!(
        "== Version-2 stream loads too: fcr = {:#04x} (default), divider = {}",
        old.fcr, old.divider
    );

    // A hostile count is refused with what, where and why.
    let mut bad = bytes.clone();
    bad[11] = 200; // recv_len far above max = 16
    let err = from_bytes::<Uart>(&bad, 3).unwrap_err();
    println!("== Corrupted stream rejected: {err}");
    Ok(())
}
