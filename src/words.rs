//! Counts in messages: "1 image has", "2 images have", never "1 images".

/// `n` and the noun: "1 image", "2 images" (`many` is the plural).
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `n`, the noun and a verb agreeing with it: "1 image has", "2 images have".
pub(crate) fn count_verb(
    n: usize,
    one: &str,
    many: &str,
    verb_one: &str,
    verb_many: &str,
) -> String {
    let verb = if n == 1 { verb_one } else { verb_many };
    format!("{} {verb}", count(n, one, many))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(count(1, "mask", "masks"), "1 mask");
        assert_eq!(count(0, "mask", "masks"), "0 masks");
        assert_eq!(
            count_verb(1, "image", "images", "has", "have"),
            "1 image has"
        );
        assert_eq!(
            count_verb(3, "image", "images", "has", "have"),
            "3 images have"
        );
    }
}
