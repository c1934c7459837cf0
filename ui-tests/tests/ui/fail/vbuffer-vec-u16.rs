use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "usb-net", version = 1)]
struct UsbNet {
    out_len: u32,
    #[vmstate(vbuffer(len = out_len), max = 2048)]
    out_buf: Vec<u16>,
}

fn main() {}
