use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "fdc", version = 2, pre_load = fdc_pre_load)]
struct Fdc {
    sra: u8,
    srb: u8,
}

// Wrong: pre_load has no version argument (that is post_load).
fn fdc_pre_load(s: &mut Fdc, _version_id: u32) -> Result<(), String> {
    s.sra = 0;
    Ok(())
}

fn main() {}
