use vmstate_runtime::VmState;

#[derive(VmState)]
#[vmstate(name = "dma", version = 1)]
struct Dma<'a> {
    mask: u8,
    regs: &'a [u8; 16],
}

fn main() {}
