use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "rtc", version = 2, minimum_version = 3)]
struct Rtc {
    cmos: [u8; 32],
    current_tm: u32,
}

fn main() {}
