use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "e1000/state")]
struct E1000Mit {
    mit_timer_on: u8,
}

// Copy-pasted from the one above, and the name was not changed.
#[derive(VmState, Default)]
#[vmstate(name = "e1000/state")]
struct E1000FullMac {
    full_mac: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "e1000", version = 2)]
struct E1000 {
    rxbuf_size: u32,
    #[vmstate(subsection)]
    mit: E1000Mit,
    #[vmstate(subsection)]
    full_mac: E1000FullMac,
}

fn main() {}
