//! Compile-pass and compile-fail tests for `#[derive(VmState)]`.
//!
//! Regenerate the expected compiler output after an intended change with
//! `TRYBUILD=overwrite cargo test -p ui-tests`, then review every `.stderr` diff:
//! each error must point at the attribute or field the user wrote.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
