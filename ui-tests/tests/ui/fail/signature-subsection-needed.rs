use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "serial/tsr", version = 1)]
struct SerialTsr {
    tsr_retry: u32,
    tsr: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "serial", version = 3)]
struct Serial {
    lsr: u8,
    #[vmstate(subsection(needed = tsr_needed))]
    tsr: SerialTsr,
}

// Wrong: `needed` returns bool, not Option<bool>.
fn tsr_needed(s: &Serial) -> Option<bool> {
    Some(s.tsr.tsr_retry != 0)
}

fn main() {}
