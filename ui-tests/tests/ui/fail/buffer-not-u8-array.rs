use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "nvram", version = 1)]
struct Nvram {
    #[vmstate(buffer)]
    data: [u16; 16],
}

fn main() {}
