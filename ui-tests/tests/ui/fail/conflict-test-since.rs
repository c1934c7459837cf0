use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "ehci", version = 2)]
struct Ehci {
    usbcmd: u32,
    #[vmstate(test = has_frindex, since = 2)]
    frindex: u32,
}

fn has_frindex(_s: &Ehci, version_id: u32) -> bool {
    version_id >= 2
}

fn main() {}
