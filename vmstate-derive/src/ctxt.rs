//! The error accumulator of one derive, and where errors are shown.
//!
//! Every stage (the attribute pass, the checks) reports into one [`Ctxt`] and
//! carries on, so all mistakes of one derive are reported together. An error
//! covers a whole range of tokens (`since = 3`, `Vec<u32>`), not just its first
//! token. As serde_derive's `Ctxt`, it must be [`check`](Ctxt::check)ed: dropping
//! it unchecked is a bug in the derive and panics.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects the errors of one derive.
pub struct Ctxt {
    /// `None` once checked.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An accumulator with no errors yet.
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// An error covering all of `tokens` (first to last token, even on stable).
    pub fn error_spanned_by(&self, tokens: impl ToTokens, msg: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens, msg));
    }

    /// An error at one span.
    pub fn error_at(&self, span: Span, msg: impl Display) {
        self.syn_error(syn::Error::new(span, msg));
    }

    /// An error as syn or darling made it.
    pub fn syn_error(&self, e: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check")
            .push(e);
    }

    /// Whether anything was reported so far.
    pub fn has_errors(&self) -> bool {
        self.errors.borrow().as_ref().is_some_and(|e| !e.is_empty())
    }

    /// All reported errors, combined into one (in the order they were reported).
    pub fn check(self) -> Result<(), syn::Error> {
        let errors = self.errors.borrow_mut().take().expect("Ctxt checked twice");
        let mut errors = errors.into_iter();
        let Some(mut all) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            all.combine(e);
        }
        Err(all)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("vmstate-derive: errors were collected but never checked");
        }
    }
}

/// A span for generated code that is about `node`: errors in it are shown at
/// `node` (the user's type or path), while names in it resolve like the rest of the
/// generated code (so `self` and locals still work when the struct was written by a
/// `macro_rules!` macro).
pub fn user_span(node: &impl syn::spanned::Spanned) -> Span {
    Span::call_site().located_at(node.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_errors_in_order() {
        let cx = Ctxt::new();
        assert!(cx.check().is_ok());
        let cx = Ctxt::new();
        cx.error_at(Span::call_site(), "first");
        cx.error_spanned_by(quote::quote!(since = 3), "second");
        assert!(cx.has_errors());
        let all: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all, ["first", "second"]);
    }

    #[test]
    #[should_panic(expected = "never checked")]
    fn unchecked_errors_are_a_bug() {
        let _cx = Ctxt::new();
    }
}
