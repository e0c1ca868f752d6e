//! Exact splits: an amount shared out by weight so that the parts always sum to the whole.
//!
//! Each part first gets the floor of its exact share; the minor units that the floors leave
//! over (fewer than there are parts) then go one each to the parts with the largest
//! remainders, ties to the earlier part. This is the largest remainder method: no part is
//! ever a whole minor unit away from its exact share, and nothing is lost or invented.

use crate::limits::{ALLOCATION_SHARES_MAX, ALLOCATION_WEIGHT_MAX};

/// Splits `amount` minor units by `weights`. Every weight must be between 1 and
/// `ALLOCATION_WEIGHT_MAX`, and there must be between 1 and `ALLOCATION_SHARES_MAX` of them.
pub fn split(amount: u128, weights: &[u64]) -> Vec<u128> {
    assert!((1..=ALLOCATION_SHARES_MAX).contains(&weights.len()), "an allocation has 1 to ALLOCATION_SHARES_MAX entries");
    assert!(weights.iter().all(|w| (1..=ALLOCATION_WEIGHT_MAX).contains(w)), "weights are validated");
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    // amount * weight / total, without the product: with amount = whole * total + rest, the
    // share is whole * weight plus rest * weight / total, and rest * weight < 2^80.
    let (whole, rest) = (amount / total, amount % total);
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (index, &weight) in weights.iter().enumerate() {
        let weight = u128::from(weight);
        parts.push(whole * weight + rest * weight / total);
        remainders.push((rest * weight % total, index));
    }
    let left_over = amount - parts.iter().sum::<u128>();
    assert!(left_over < weights.len() as u128, "each floor loses less than one minor unit");
    // Largest remainder first, the earlier entry first among equals.
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in &remainders[..left_over as usize] {
        parts[index] += 1;
    }
    debug_assert_eq!(parts.iter().sum::<u128>(), amount);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pot_of_100_00_three_ways_gives_the_odd_cent_to_the_first() {
        assert_eq!(split(10_000, &[1, 1, 1]), [3_334, 3_333, 3_333]);
    }

    #[test]
    fn left_over_units_go_to_the_largest_remainders() {
        // Exact shares of 10 by 1:2:3 are 1.67, 3.33 and 5: the unit goes to the first.
        assert_eq!(split(10, &[1, 2, 3]), [2, 3, 5]);
        // 7 by 3:3:1 is 3, 3 and 1 exactly.
        assert_eq!(split(7, &[3, 3, 1]), [3, 3, 1]);
        // 1 unit over three equal weights: the first gets it, the rest get zero.
        assert_eq!(split(1, &[5, 5, 5]), [1, 0, 0]);
        assert_eq!(split(0, &[1, 2]), [0, 0]);
    }

    #[test]
    fn the_largest_amounts_and_weights_do_not_overflow() {
        let amount = crate::TOTAL_MAX;
        let weights = vec![ALLOCATION_WEIGHT_MAX; ALLOCATION_SHARES_MAX];
        let parts = split(amount, &weights);
        assert_eq!(parts.iter().sum::<u128>(), amount);
        let mut mixed = vec![1; ALLOCATION_SHARES_MAX];
        mixed[7] = ALLOCATION_WEIGHT_MAX;
        assert_eq!(split(amount, &mixed).iter().sum::<u128>(), amount);
    }
}
