use vmstate_runtime::{VmState, WithTmp};

#[derive(VmState, Default)]
#[vmstate(name = "tpm/tmp")]
struct TpmTmp {
    size: u16,
}

// Missing: impl VmStateTmp<Tpm> for TpmTmp.
#[derive(VmState, Default)]
#[vmstate(name = "tpm", version = 1)]
struct Tpm {
    #[vmstate(skip)]
    size: u32,
    #[vmstate(with_tmp)]
    view: WithTmp<TpmTmp>,
}

fn main() {}
