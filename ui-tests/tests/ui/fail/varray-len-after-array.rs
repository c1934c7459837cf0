use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ahci", version = 1)]
struct Ahci {
    // The loader would need `num_ports` before reading `ports`.
    #[vmstate(varray(len = num_ports), max = 32)]
    ports: Vec<u32>,
    num_ports: u32,
}

fn main() {}
