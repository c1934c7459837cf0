//! "Did you mean": the closest known name to a misspelt one (keys, nested keys,
//! count fields).

/// The candidate closest to `name` when it looks like a typo of it.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| {
            *d > 0
                && (*d <= 2.min(c.len().max(name.len()) / 2)
                    || (c.len().min(name.len()) >= 3
                        && (c.starts_with(name) || name.starts_with(c))))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol::{self, Place};

    #[test]
    fn suggestions() {
        let container = symbol::names(|k| k.allowed_on(Place::Struct));
        let field = symbol::names(|k| k.allowed_on(Place::Field));
        assert_eq!(
            closest("verison", container.iter().copied()),
            Some("version")
        );
        assert_eq!(closest("sinc", field.iter().copied()), Some("since"));
        assert_eq!(closest("endian", field.iter().copied()), None);
        assert_eq!(
            closest("queu_len", ["queue_len", "status"]),
            Some("queue_len")
        );
        assert_eq!(closest("mix", ["max"]), Some("max"));
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(closest("length", ["len"]), Some("len"));
        assert_eq!(closest("need", ["needed"]), Some("needed"));
    }
}
