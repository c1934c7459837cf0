// Expansion of the `fallback` case in vmstate-derive/src/expand/output_tests/mod.rs
// (1 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

::core::compile_error! {
    "unknown key `versoin` in #[vmstate(...)] on a struct; did you mean `version`?"
}
const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Bad {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "\0vmstate-derive: invalid",
            version_id: 0,
            minimum_version_id: 0,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[],
            subsections: &[],
            hooks: __vmstate::Hooks {
                pre_save: false,
                post_save: false,
                pre_load: false,
                post_load: false,
            },
        };
        fn save_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            _: &mut __vmstate::Writer<__B>,
            _: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::unreachable!()
        }
        fn load<__B: __vmstate::Buf>(
            &mut self,
            _: &mut __vmstate::Reader<__B>,
            _: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::unreachable!()
        }
    }
    #[automatically_derived]
    impl __vmstate::VmStateField for Bad {
        const FIELD_TYPE: __vmstate::FieldType = __vmstate::INVALID_TYPE;
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            _: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::unreachable!()
        }
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            _: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::unreachable!()
        }
    }
};
