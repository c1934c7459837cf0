use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "sdhci", version = 1)]
struct Sdhci {
    has_data: bool,
    #[vmstate(vbuffer(len = has_data))]
    fifo: [u8; 32],
}

fn main() {}
