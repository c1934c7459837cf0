use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "sb16/dma")]
struct Dma {
    auto: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "sb16", version = 2)]
struct Sb16 {
    irq: u8,
    #[vmstate(varray(length = irq), max = 4)]
    mixer: Vec<u8>,
    nbits: u16,
    #[vmstate(bitmap, max = 64)]
    pending: Vec<u64>,
    #[vmstate(subsection(need = dma_needed))]
    dma: Dma,
}

fn dma_needed(s: &Sb16) -> bool {
    s.dma.auto != 0
}

fn main() {}
