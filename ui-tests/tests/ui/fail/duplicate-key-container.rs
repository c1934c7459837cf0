use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pcnet", version = 3, name = "pcnet2")]
struct Pcnet {
    csr: [u16; 32],
}

fn main() {}
