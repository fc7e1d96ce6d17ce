//! Arithmetic modulo SRP's 3072-bit prime N, in Montgomery form, with fixed-base tables.
//!
//! `num-bigint-dig`, `crypto-bigint`, `dashu` and `ibig` all take 4.5–5.5 µs per 3072-bit
//! modular multiplication on the 2-core benchmark machine, which puts pair-setup above its
//! 2.5 ms budget. Product scanning with a 128-bit accumulator (Montgomery multiplication in
//! "FIPS" order) takes 3.3–3.6 µs, and a dedicated square 2.7–3.2 µs (both vary between
//! days and builds on that machine), about 2 cycles per 64-bit product. None of those
//! crates offers fixed-base exponentiation either, which is where most of the rest goes:
//! g and the stored verifier v are the same in every pair-setup, so [`FixedBase`] keeps
//! their powers and replaces 256 or 512 squarings by a table lookup per window.
//!
//! Exponentiation by a secret exponent ([`Field::pow`], [`FixedBase::pow_secret`]) uses
//! fixed windows, reads every table entry of a window and selects with `subtle`, and
//! multiplies even by a zero digit, so its branches and memory accesses do not depend on
//! the exponent. The final subtraction of every multiplication is a masked select too.

use alloc::vec::Vec;

use num_bigint_dig::BigUint;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use super::{GROUP_LEN, GROUP_PRIME};

/// 64-bit limbs in a group element.
pub(super) const LIMBS: usize = GROUP_LEN / 8;

/// A residue in Montgomery form (x·R mod N, R = 2^3072), least significant limb first.
pub(super) type Element = [u64; LIMBS];

/// Three-word accumulator for product scanning: the sum of many 128-bit products.
#[derive(Clone, Copy, Default)]
struct Accumulator {
    low: u128,
    top: u64,
}

impl Accumulator {
    #[inline(always)]
    fn add_product(&mut self, x: u64, y: u64) {
        let (sum, carry) = self.low.overflowing_add(u128::from(x) * u128::from(y));
        self.low = sum;
        self.top += u64::from(carry);
    }

    /// Adds `other` twice: the off-diagonal products of a square.
    #[inline(always)]
    fn add_twice(&mut self, other: Accumulator) {
        for _ in 0..2 {
            let (sum, carry) = self.low.overflowing_add(other.low);
            self.low = sum;
            self.top += u64::from(carry) + other.top;
        }
    }

    /// Takes the lowest word and shifts the rest down.
    #[inline(always)]
    fn shift(&mut self) -> u64 {
        let out = self.low as u64;
        self.low = (self.low >> 64) | (u128::from(self.top) << 64);
        self.top = 0;
        out
    }
}

/// The modulus N and the constants of its Montgomery form.
#[derive(Clone)]
pub(super) struct Field {
    n: Element,
    /// N again, for reducing values that arrive as big integers.
    modulus: BigUint,
    /// -N⁻¹ mod 2^64.
    n_inverse: u64,
    /// R² mod N, to bring values into Montgomery form.
    r_squared: Element,
    /// R mod N: one, in Montgomery form.
    one: Element,
}

impl core::fmt::Debug for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Field(N)")
    }
}

impl Field {
    /// The field of SRP's group prime.
    pub(super) fn new() -> Self {
        let n = limbs_from_be(&GROUP_PRIME);
        // Newton's iteration doubles the correct low bits each round: 1 → 64 in 6.
        let mut inverse: u64 = 1;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inverse)));
        }
        let modulus = BigUint::from_bytes_be(&GROUP_PRIME);
        let r = BigUint::from(1u8) << (64 * LIMBS);
        let r_squared = limbs_from_biguint(&((&r * &r) % &modulus));
        let one = limbs_from_biguint(&(r % &modulus));
        Self {
            n,
            modulus,
            n_inverse: inverse.wrapping_neg(),
            r_squared,
            one,
        }
    }

    /// One, in Montgomery form.
    pub(super) fn one(&self) -> Element {
        self.one
    }

    /// `value` (any size) reduced mod N, in Montgomery form.
    pub(super) fn element(&self, value: &BigUint) -> Element {
        let mut reduced = limbs_from_biguint(&(value % &self.modulus));
        let element = self.mul(&reduced, &self.r_squared);
        reduced.zeroize();
        element
    }

    /// `element` out of Montgomery form, big-endian and padded to 384 bytes.
    pub(super) fn to_bytes(&self, element: &Element) -> [u8; GROUP_LEN] {
        let mut plain_one = [0u64; LIMBS];
        plain_one[0] = 1;
        let mut value = self.mul(element, &plain_one);
        let mut out = [0u8; GROUP_LEN];
        for (chunk, limb) in out.rchunks_exact_mut(8).zip(value.iter()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        value.zeroize();
        out
    }

    /// a + b mod N.
    pub(super) fn add(&self, a: &Element, b: &Element) -> Element {
        let mut sum = [0u64; LIMBS];
        let mut carry = false;
        for ((s, x), y) in sum.iter_mut().zip(a).zip(b) {
            let (partial, carry_a) = x.overflowing_add(*y);
            let (full, carry_b) = partial.overflowing_add(u64::from(carry));
            *s = full;
            carry = carry_a | carry_b;
        }
        self.subtract_if_needed(sum, u64::from(carry))
    }

    /// a·b·R⁻¹ mod N, by product scanning (both products in one pass over the columns).
    pub(super) fn mul(&self, a: &Element, b: &Element) -> Element {
        let n = &self.n;
        let mut m = [0u64; LIMBS];
        let mut out = [0u64; LIMBS];
        let mut acc = Accumulator::default();
        for i in 0..LIMBS {
            for j in 0..i {
                acc.add_product(a[j], b[i - j]);
                acc.add_product(m[j], n[i - j]);
            }
            acc.add_product(a[i], b[0]);
            m[i] = (acc.low as u64).wrapping_mul(self.n_inverse);
            acc.add_product(m[i], n[0]);
            acc.shift();
        }
        for i in LIMBS..2 * LIMBS {
            for j in i - LIMBS + 1..LIMBS {
                acc.add_product(a[j], b[i - j]);
                acc.add_product(m[j], n[i - j]);
            }
            out[i - LIMBS] = acc.shift();
        }
        let carry = acc.low as u64;
        m.zeroize();
        self.subtract_if_needed(out, carry)
    }

    /// a²·R⁻¹ mod N: like [`Field::mul`], with each off-diagonal product computed once.
    pub(super) fn square(&self, a: &Element) -> Element {
        let n = &self.n;
        let mut m = [0u64; LIMBS];
        let mut out = [0u64; LIMBS];
        let mut acc = Accumulator::default();
        for i in 0..2 * LIMBS - 1 {
            let low = i.saturating_sub(LIMBS - 1);
            let mut half = Accumulator::default();
            let mut j = low;
            while j < i - j {
                half.add_product(a[j], a[i - j]);
                j += 1;
            }
            acc.add_twice(half);
            if i % 2 == 0 {
                acc.add_product(a[i / 2], a[i / 2]);
            }
            let reduce_from = i.saturating_sub(LIMBS - 1).max(usize::from(i >= LIMBS));
            for j in reduce_from..i.min(LIMBS) {
                acc.add_product(m[j], n[i - j]);
            }
            if i < LIMBS {
                m[i] = (acc.low as u64).wrapping_mul(self.n_inverse);
                acc.add_product(m[i], n[0]);
                acc.shift();
            } else {
                out[i - LIMBS] = acc.shift();
            }
        }
        out[LIMBS - 1] = acc.shift();
        let carry = acc.low as u64;
        m.zeroize();
        self.subtract_if_needed(out, carry)
    }

    /// `value` (below 2N, with `carry` its bit 3072) reduced below N, without a branch.
    fn subtract_if_needed(&self, value: Element, carry: u64) -> Element {
        let mut difference = [0u64; LIMBS];
        let mut borrow = 0u64;
        for ((d, v), n) in difference.iter_mut().zip(&value).zip(&self.n) {
            let (partial, borrow_a) = v.overflowing_sub(*n);
            let (full, borrow_b) = partial.overflowing_sub(borrow);
            *d = full;
            borrow = u64::from(borrow_a | borrow_b);
        }
        // value ≥ N exactly when it carried out of 3072 bits or the subtraction did not borrow.
        let keep_difference = !carry.ct_eq(&0) | borrow.ct_eq(&0);
        let mut out = value;
        for (o, d) in out.iter_mut().zip(&difference) {
            o.conditional_assign(d, keep_difference);
        }
        out
    }

    /// base^exponent for a secret big-endian exponent, in 4-bit fixed windows.
    pub(super) fn pow(&self, base: &Element, exponent: &[u8]) -> Element {
        let mut table = [[0u64; LIMBS]; 16];
        table[0] = self.one;
        table[1] = *base;
        for index in 2..16 {
            table[index] = self.mul(&table[index - 1], base);
        }
        let mut result = self.one;
        for (position, digit) in nibbles(exponent).enumerate() {
            if position > 0 {
                for _ in 0..4 {
                    result = self.square(&result);
                }
            }
            let mut chosen = select(&table, digit);
            result = self.mul(&result, &chosen);
            chosen.zeroize();
        }
        table.zeroize();
        result
    }
}

/// Powers of one base for exponents of up to `bits` bits: entry (w, d) is
/// base^(d·2^(window·w)), so base^e is one multiplication per window of e.
pub(super) struct FixedBase {
    window: u32,
    windows: usize,
    /// `windows` rows of 2^`window` elements, row-major.
    table: Vec<Element>,
}

impl core::fmt::Debug for FixedBase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FixedBase")
            .field("window", &self.window)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl FixedBase {
    /// The table of `base` for exponents of up to `bits` bits, `window` bits per lookup:
    /// `bits / window` rows of 2^window elements of 384 bytes.
    pub(super) fn new(field: &Field, base: &Element, bits: usize, window: u32) -> Self {
        let width = 1usize << window;
        let windows = bits.div_ceil(window as usize);
        let mut table = Vec::with_capacity(windows * width);
        let mut row_base = *base;
        for row in 0..windows {
            if row > 0 {
                for _ in 0..window {
                    row_base = field.square(&row_base);
                }
            }
            table.push(field.one());
            table.push(row_base);
            for digit in 2..width {
                let previous = table[row * width + digit - 1];
                table.push(field.mul(&previous, &row_base));
            }
        }
        row_base.zeroize();
        Self {
            window,
            windows,
            table,
        }
    }

    fn row(&self, index: usize) -> &[Element] {
        let width = 1usize << self.window;
        &self.table[index * width..(index + 1) * width]
    }

    /// base^exponent for a public big-endian exponent (u): zero digits are skipped.
    pub(super) fn pow_public(&self, field: &Field, exponent: &[u8]) -> Element {
        let mut result = field.one();
        for (row, digit) in self.digits(exponent).enumerate() {
            if digit != 0 {
                result = field.mul(&result, &self.row(row)[digit]);
            }
        }
        result
    }

    /// base^exponent for a secret big-endian exponent (b): every row is read whole.
    pub(super) fn pow_secret(&self, field: &Field, exponent: &[u8]) -> Element {
        let mut result = field.one();
        for (row, digit) in self.digits(exponent).enumerate() {
            let mut chosen = select(self.row(row), digit);
            result = field.mul(&result, &chosen);
            chosen.zeroize();
        }
        result
    }

    /// The exponent's digits in this table's window, least significant first. The callers'
    /// fixed sizes keep exponents within the table's bits.
    fn digits<'e>(&self, exponent: &'e [u8]) -> impl Iterator<Item = usize> + 'e {
        debug_assert!(exponent.len() * 8 <= self.windows * self.window as usize);
        let window = self.window as usize;
        (0..self.windows).map(move |row| {
            let mut digit = 0usize;
            for bit in (0..window).rev() {
                let position = row * window + bit;
                let byte = position / 8;
                let set = byte < exponent.len()
                    && (exponent[exponent.len() - 1 - byte] >> (position % 8)) & 1 == 1;
                digit = (digit << 1) | usize::from(set);
            }
            digit
        })
    }
}

impl Drop for FixedBase {
    fn drop(&mut self) {
        // The verifier's powers are as secret as the verifier.
        for element in &mut self.table {
            element.zeroize();
        }
    }
}

/// `table[index]`, reading every entry so the access pattern does not reveal `index`.
fn select(table: &[Element], index: usize) -> Element {
    let mut out = [0u64; LIMBS];
    for (candidate, entry) in table.iter().enumerate() {
        let hit = (candidate as u64).ct_eq(&(index as u64));
        for (o, e) in out.iter_mut().zip(entry) {
            o.conditional_assign(e, hit);
        }
    }
    out
}

/// The exponent's 4-bit digits, most significant first.
fn nibbles(exponent: &[u8]) -> impl Iterator<Item = usize> + '_ {
    exponent
        .iter()
        .flat_map(|byte| [usize::from(byte >> 4), usize::from(byte & 0x0f)])
}

fn limbs_from_be(bytes: &[u8; GROUP_LEN]) -> Element {
    let mut limbs = [0u64; LIMBS];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.rchunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(word);
    }
    limbs
}

/// `value`, which must be below 2^3072, as limbs.
fn limbs_from_biguint(value: &BigUint) -> Element {
    let bytes = zeroize::Zeroizing::new(value.to_bytes_be());
    let mut padded = zeroize::Zeroizing::new([0u8; GROUP_LEN]);
    padded[GROUP_LEN - bytes.len()..].copy_from_slice(&bytes);
    limbs_from_be(&padded)
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use num_bigint_dig::BigUint;
    use proptest::prelude::*;

    use super::*;

    fn modulus() -> BigUint {
        BigUint::from_bytes_be(&GROUP_PRIME)
    }

    fn value(field: &Field, element: &Element) -> BigUint {
        BigUint::from_bytes_be(&field.to_bytes(element))
    }

    fn big(bytes: &[u8]) -> BigUint {
        BigUint::from_bytes_be(bytes)
    }

    /// Values near the edges as well as random ones: 0, 1, N-1, N, 2^3072-1.
    fn operand() -> impl Strategy<Value = Vec<u8>> {
        let n_minus_one = (modulus() - 1u8).to_bytes_be();
        prop_oneof![
            Just(vec![0u8]),
            Just(vec![1u8]),
            Just(n_minus_one),
            Just(GROUP_PRIME.to_vec()),
            Just(vec![0xffu8; GROUP_LEN]),
            proptest::collection::vec(any::<u8>(), 1..=GROUP_LEN),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mul_and_square_agree_with_num_bigint(a in operand(), b in operand()) {
            let field = Field::new();
            let (x, y) = (field.element(&big(&a)), field.element(&big(&b)));
            let expected = (big(&a) * big(&b)) % modulus();
            prop_assert_eq!(value(&field, &field.mul(&x, &y)), expected);
            let squared = (big(&a) * big(&a)) % modulus();
            prop_assert_eq!(value(&field, &field.square(&x)), squared);
        }

        #[test]
        fn pow_agrees_with_num_bigint(
            base in operand(),
            exponent in proptest::collection::vec(any::<u8>(), 0..=64),
        ) {
            let field = Field::new();
            let expected = big(&base).modpow(&big(&exponent), &modulus());
            let x = field.element(&big(&base));
            prop_assert_eq!(value(&field, &field.pow(&x, &exponent)), expected.clone());
            for window in [4, 5] {
                let table = FixedBase::new(&field, &x, 512, window);
                prop_assert_eq!(value(&field, &table.pow_public(&field, &exponent)), expected.clone());
                prop_assert_eq!(value(&field, &table.pow_secret(&field, &exponent)), expected.clone());
            }
        }
    }

    #[test]
    fn round_trips_through_montgomery_form() {
        let field = Field::new();
        for bytes in [&[0u8][..], &[5], &GROUP_PRIME[1..]] {
            let element = field.element(&big(bytes));
            assert_eq!(value(&field, &element), big(bytes) % modulus());
        }
        assert_eq!(value(&field, &field.one()), BigUint::from(1u8));
    }
}
