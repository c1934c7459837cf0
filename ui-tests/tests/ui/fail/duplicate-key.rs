use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "rtl8139", version = 4)]
struct Rtl8139 {
    phys: [u8; 6],
    #[vmstate(since = 3, since = 4)]
    rx_buf_size: u32,
}

fn main() {}
