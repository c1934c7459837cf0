use vmstate_runtime::VmState;

#[derive(VmState)]
#[repr(u8)]
enum Command {
    Nop,
    Read(u32),
    Write { addr: u32, len: u16 },
}

fn main() {}
