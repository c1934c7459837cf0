use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "cpu/fpu", version = 1)]
struct Fpu {
    fpuc: u16,
}

#[derive(VmState, Default)]
#[vmstate(name = "cpu", version = 12)]
struct Cpu {
    eip: u32,
    #[vmstate(subsection, since = 12)]
    fpu: Fpu,
}

fn main() {}
