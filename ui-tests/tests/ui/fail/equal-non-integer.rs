use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ich9-lpc", version = 1)]
struct Ich9Lpc {
    #[vmstate(equal)]
    rst_cnt: [u8; 4],
    sci_level: u32,
}

fn main() {}
