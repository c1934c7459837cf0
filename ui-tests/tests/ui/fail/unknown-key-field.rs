use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "cirrus", version = 2)]
struct Cirrus {
    vga: u32,
    #[vmstate(sinc = 2)]
    cirrus_hidden_dac: u8,
}

fn main() {}
