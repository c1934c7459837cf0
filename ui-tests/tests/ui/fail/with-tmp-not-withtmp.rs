use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "tpm/tmp")]
struct TpmTmp {
    size: u16,
}

#[derive(VmState, Default)]
#[vmstate(name = "tpm", version = 1)]
struct Tpm {
    #[vmstate(skip)]
    size: u32,
    // Must be declared as `WithTmp<TpmTmp>`.
    #[vmstate(with_tmp)]
    view: TpmTmp,
}

fn main() {}
